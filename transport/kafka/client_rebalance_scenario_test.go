package kafka_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/internal/kafkatest"
)

// handling records which client handles which message, and how many handle one
// message at once.
type handling struct {
	mu        sync.Mutex
	by        map[string][]string // message → clients, one entry per attempt
	now       map[string]int
	maxAtOnce int
}

func (h *handling) begin(client, msg string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.by[msg] = append(h.by[msg], client)
	h.now[msg]++
	h.maxAtOnce = max(h.maxAtOnce, h.now[msg])
}

func (h *handling) end(msg string) {
	h.mu.Lock()
	h.now[msg]--
	h.mu.Unlock()
}

// TestClientRebalanceDuringInPlaceRetryBackoff, through the full client: client A's
// handler fails the first attempt of both messages (one per partition), so each
// waits out an in-place retry backoff of 10 minutes (Delivery.BackoffDelay); client
// B joins the group. A partition moves to B within seconds, B handles its message,
// and no message is handled by two clients at once.
func TestClientRebalanceDuringInPlaceRetryBackoff(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.New(t)
	url := cluster.URL("partitions=2&session_timeout=9s&rebalance_timeout=6s")
	topic := pubsub.NewTopic[string](kafkatest.Topic("client-backoff"))
	h := &handling{by: map[string][]string{}, now: map[string]int{}}
	delivery := pubsub.Delivery{Retry: 3, BackoffDelay: 5 * time.Minute}
	start := func(name string) *pubsub.Client {
		c, err := pubsub.Open(context.Background(), url, pubsub.WithDrainTimeout(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		err = pubsub.Subscribe(c, topic, "g", func(ctx context.Context, m *pubsub.Message[string]) error {
			h.begin(name, m.Payload)
			defer h.end(m.Payload)
			if name == "a" && m.Attempt == 1 {
				return errors.New("fails the first time")
			}
			return nil
		}, pubsub.WithDelivery(delivery))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		ran := make(chan error, 1)
		go func() { ran <- c.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			<-ran
			c.Close()
		})
		return c
	}
	a := start("a")
	keys := map[int32]string{}
	for i := 0; len(keys) < 2; i++ {
		k := "key-" + string(rune('a'+i))
		if _, ok := keys[javaPartition(k, 2)]; !ok {
			keys[javaPartition(k, 2)] = k
		}
	}
	for p, k := range keys {
		if err := pubsub.Publish(context.Background(), a, topic, "message-of-"+k, pubsub.WithMessageKey(k)); err != nil {
			t.Fatalf("publishing to partition %d: %v", p, err)
		}
	}
	if !waitFor(20*time.Second, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.by) == 2
	}) {
		t.Fatal("A did not handle both messages")
	}
	time.Sleep(200 * time.Millisecond) // both are in their 10-minute backoff now
	joined := time.Now()
	start("b")
	var moved string
	// Measured on a quiet machine: 0.6-1.0 s. Waiting for A's backoff would take 10
	// minutes; two minutes is far from both.
	if !waitFor(2*time.Minute, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		for msg, clients := range h.by {
			for _, c := range clients {
				if c == "b" {
					moved = msg
					return true
				}
			}
		}
		return false
	}) {
		t.Fatal("B handled nothing within 2 minutes of joining: the rebalance waited for A's retry backoff")
	}
	t.Logf("B handled %q %s after joining", moved, time.Since(joined).Round(time.Millisecond))
	time.Sleep(time.Second)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.maxAtOnce > 1 {
		t.Errorf("a message was handled %d times at once", h.maxAtOnce)
	}
	if got := h.by[moved]; len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("%q was handled by %v, want a (the failed attempt) then b", moved, got)
	}
	t.Logf("%q moved to B; attempts %v", moved, h.by)
}
