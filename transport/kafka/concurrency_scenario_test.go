package kafka_test

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

// keyWatch records, per key, how many of its messages are in a handler now and the
// highest of them at once, and overall in flight; and checks each key's order.
type keyWatch struct {
	mu          sync.Mutex
	inFlight    map[string]int
	maxPerKey   int
	now, maxAll int
	last        map[string]int // the key's last sequence handled
	disorder    []string
}

func newKeyWatch() *keyWatch { return &keyWatch{inFlight: map[string]int{}, last: map[string]int{}} }

func (w *keyWatch) start(key string, seq int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.inFlight[key]++
	w.maxPerKey = max(w.maxPerKey, w.inFlight[key])
	w.now++
	w.maxAll = max(w.maxAll, w.now)
	if prev, ok := w.last[key]; ok && seq <= prev {
		w.disorder = append(w.disorder, key+": "+strconv.Itoa(seq)+" after "+strconv.Itoa(prev))
	}
	w.last[key] = max(w.last[key], seq)
}

func (w *keyWatch) end(key string) {
	w.mu.Lock()
	w.inFlight[key]--
	w.now--
	w.mu.Unlock()
}

// keySeq reads the payload "key/seq".
func keySeq(m *message.Message) (string, int) {
	key, seq, _ := strings.Cut(string(m.Payload), "/")
	n, _ := strconv.Atoi(seq)
	return key, n
}

// perKeyMessages are n messages spread over keys keys, payload "key/seq" with seq
// counting each key's messages.
func perKeyMessages(n, keys int) []*message.Message {
	msgs := make([]*message.Message, n)
	for i := range msgs {
		key := "k" + strconv.Itoa(i%keys)
		msgs[i] = message.NewMessage("m"+strconv.Itoa(i), []byte(key+"/"+strconv.Itoa(i/keys)))
		msgs[i].Metadata.Set(metadata.Key, key)
	}
	return msgs
}

// handleAll runs a handler per delivered message, as a Watermill router does, until
// n distinct messages were acked; handle returns whether to ack.
func handleAll(t *testing.T, sub transport.Subscription, n int, timeout time.Duration, handle func(m *message.Message) bool) {
	t.Helper()
	var acked sync.Map
	var count atomic.Int64
	done := make(chan struct{})
	go func() {
		for m := range sub.Messages() {
			go func() {
				if !handle(m) {
					m.Nack()
					return
				}
				m.Ack()
				if _, dup := acked.LoadOrStore(m.UUID, true); !dup && count.Add(1) == int64(n) {
					close(done)
				}
			}()
		}
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		t.Fatalf("%d of %d messages acked within %s", count.Load(), n, timeout)
	}
}

// TestPerKeyConcurrencyOrdered: Concurrency 16, 3 partitions, 60 keys, 1,200
// messages: never two messages of one key in handlers at once, each key in its
// publish (offset) order, and more than one message in flight at once.
func TestPerKeyConcurrencyOrdered(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.New(t)
	topic := kafkatest.Topic("perkey")
	tr := newTransport(t, cluster, kafka.Config{Partitions: 3})
	const n, keys = 1200, 60
	if err := tr.Publish(topic, perKeyMessages(n, keys)...); err != nil {
		t.Fatal(err)
	}
	w := newKeyWatch()
	sub := subscribe(t, tr, topic, transport.SubscribeOptions{Group: "g", Concurrency: 16})
	handleAll(t, sub, n, 60*time.Second, func(m *message.Message) bool {
		key, seq := keySeq(m)
		w.start(key, seq)
		time.Sleep(time.Millisecond)
		w.end(key)
		return true
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.maxPerKey != 1 {
		t.Errorf("%d messages of one key in handlers at once, want 1", w.maxPerKey)
	}
	if len(w.disorder) > 0 {
		t.Errorf("%d messages out of their key's order, first %v", len(w.disorder), w.disorder[0])
	}
	if w.maxAll < 2 {
		t.Errorf("at most %d message in flight at once: no concurrency", w.maxAll)
	}
	t.Logf("at most %d in flight at once (3 partitions x Concurrency 16)", w.maxAll)
}

// TestInPlaceRetryHoldsOnlyItsKey: one key's message is nacked (an in-place retry,
// NackDelay 1s) while other keys of the same partition flow: during the wait the
// other keys' messages are handled, the nacked key's later ones are not, and the
// nacked message comes back before them.
func TestInPlaceRetryHoldsOnlyItsKey(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.New(t)
	topic := kafkatest.Topic("retrykey")
	tr := newTransport(t, cluster, kafka.Config{Partitions: 1, NackDelay: time.Second})
	const n, keys = 200, 10
	if err := tr.Publish(topic, perKeyMessages(n, keys)...); err != nil {
		t.Fatal(err)
	}
	var (
		mu           sync.Mutex
		nackedAt     time.Time
		retriedAt    time.Time
		othersDuring int
		heldLeaked   []string
		attempts     int
	)
	w := newKeyWatch()
	sub := subscribe(t, tr, topic, transport.SubscribeOptions{Group: "g", Concurrency: 8})
	handleAll(t, sub, n, 60*time.Second, func(m *message.Message) bool {
		key, seq := keySeq(m)
		mu.Lock()
		waiting := !nackedAt.IsZero() && retriedAt.IsZero()
		switch {
		case key == "k0" && seq == 0:
			attempts++
			if attempts == 1 {
				nackedAt = time.Now()
				mu.Unlock()
				return false
			}
			retriedAt = time.Now()
		case key == "k0" && waiting:
			heldLeaked = append(heldLeaked, string(m.Payload))
		case waiting:
			othersDuring++
		}
		mu.Unlock()
		w.start(key, seq)
		time.Sleep(time.Millisecond)
		w.end(key)
		return true
	})
	mu.Lock()
	defer mu.Unlock()
	if wait := retriedAt.Sub(nackedAt); wait < 900*time.Millisecond {
		t.Errorf("the nacked message came back after %s, want the NackDelay of 1s", wait)
	}
	if othersDuring == 0 {
		t.Errorf("no other key's message was handled while k0 waited for its retry: the retry held back the partition")
	}
	if len(heldLeaked) > 0 {
		t.Errorf("k0's later messages %v were handled while its first waited for its retry", heldLeaked)
	}
	if len(w.disorder) > 0 || w.maxPerKey != 1 {
		t.Errorf("key order broken: %v, at most %d of one key at once", w.disorder, w.maxPerKey)
	}
	t.Logf("%d messages of other keys handled during k0's 1s retry wait", othersDuring)
}

// TestPerKeyConcurrencyUnordered: with Unordered, messages of one key may be in
// handlers together: with one key, one partition and Concurrency 16, more than one is.
func TestPerKeyConcurrencyUnordered(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.New(t)
	topic := kafkatest.Topic("unordered")
	tr := newTransport(t, cluster, kafka.Config{Partitions: 3})
	const n = 200
	if err := tr.Publish(topic, perKeyMessages(n, 1)...); err != nil {
		t.Fatal(err)
	}
	w := newKeyWatch()
	sub := subscribe(t, tr, topic, transport.SubscribeOptions{Group: "g", Concurrency: 16, Unordered: true})
	handleAll(t, sub, n, 60*time.Second, func(m *message.Message) bool {
		key, seq := keySeq(m)
		w.start(key, seq)
		time.Sleep(5 * time.Millisecond)
		w.end(key)
		return true
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.maxPerKey < 2 {
		t.Errorf("at most %d message of the one key at once; Unordered allows up to 16", w.maxPerKey)
	}
	if w.maxPerKey > 16 {
		t.Errorf("%d messages of one partition at once, above Concurrency 16", w.maxPerKey)
	}
	t.Logf("at most %d of one key at once", w.maxPerKey)
}
