package kafka_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/transport"
)

// keyed returns n messages with ids id0..id(n-1), payloads "0".."n-1" and keys from
// key, for publishing in one call.
func keyed(n int, key func(i int) string) []*message.Message {
	msgs := make([]*message.Message, n)
	for i := range msgs {
		msgs[i] = message.NewMessage("id"+strconv.Itoa(i), []byte(strconv.Itoa(i)))
		if key != nil {
			msgs[i].Metadata.Set(metadata.Key, key(i))
		}
	}
	return msgs
}

// tally counts the messages a test received by payload: lost are the expected ones
// never received, duplicated the receipts beyond the first.
type tally struct {
	mu   sync.Mutex
	seen map[string]int
}

func newTally() *tally { return &tally{seen: map[string]int{}} }

func (c *tally) add(payload string) {
	c.mu.Lock()
	c.seen[payload]++
	c.mu.Unlock()
}

func (c *tally) distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// lostAndDuplicated counts, against the payloads "0".."n-1".
func (c *tally) lostAndDuplicated(n int) (lost, duplicated int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range n {
		switch k := c.seen[strconv.Itoa(i)]; {
		case k == 0:
			lost++
		case k > 1:
			duplicated += k - 1
		}
	}
	return lost, duplicated
}

// waitFor polls cond every 10 ms until it holds or timeout passes; it reports
// whether it held.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cond()
}

// offsetOf is the offset of a delivered message, from its context's Position.
func offsetOf(t testing.TB, m *message.Message) transport.Position {
	t.Helper()
	p, ok := transport.PositionFrom(m.Context())
	if !ok {
		t.Fatalf("message %s has no Position in its context", m.UUID)
	}
	return p
}

// subscribe subscribes to topic, ends the subscription when the test ends and waits
// for its end.
func subscribe(t testing.TB, tr transport.Transport, topic string, opts transport.SubscribeOptions) transport.Subscription {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sub, err := tr.Subscribe(ctx, topic, opts)
	if err != nil {
		cancel()
		t.Fatalf("Subscribe %q: %v", topic, err)
	}
	t.Cleanup(func() {
		cancel()
		for range sub.Messages() {
		}
		<-sub.Done()
	})
	return sub
}

// receive takes n messages from sub, acking each, within timeout.
func receive(t testing.TB, sub transport.Subscription, n int, timeout time.Duration) []*message.Message {
	t.Helper()
	got := make([]*message.Message, 0, n)
	deadline := time.After(timeout)
	for len(got) < n {
		select {
		case m, ok := <-sub.Messages():
			if !ok {
				t.Fatalf("subscription ended after %d of %d messages", len(got), n)
			}
			got = append(got, m)
			m.Ack()
		case <-deadline:
			t.Fatalf("received %d of %d messages within %s", len(got), n, timeout)
		}
	}
	return got
}

// payloads lists the payloads of msgs, for failure messages.
func payloads(msgs []*message.Message) string {
	s := ""
	for i, m := range msgs {
		if i > 0 {
			s += ","
		}
		s += string(m.Payload)
	}
	return fmt.Sprintf("[%s]", s)
}
