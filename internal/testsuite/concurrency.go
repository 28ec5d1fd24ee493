package testsuite

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/pubsubtest"
	"github.com/pubsubkit/pubsub/transport"
)

func concurrent(c transport.Capabilities) bool        { return c.Concurrency }
func concurrentOrdered(c transport.Capabilities) bool { return c.Concurrency && c.Ordered }

// inFlight tracks the handlers running, overall and per key.
type inFlight struct {
	mu      sync.Mutex
	now     int
	peak    int
	perKey  map[string]int
	keyPeak int
	seq     map[string][]int
	errs    []error
}

func newInFlight() *inFlight { return &inFlight{perKey: map[string]int{}, seq: map[string][]int{}} }

func (f *inFlight) enter(key string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now++
	f.peak = max(f.peak, f.now)
	f.perKey[key]++
	f.keyPeak = max(f.keyPeak, f.perKey[key])
	f.seq[key] = append(f.seq[key], n)
}

func (f *inFlight) leave(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now--
	f.perKey[key]--
}

// testConcurrencyKeepsKeyOrder: with Concurrency 8 and Ordered delivery, handlers of
// different keys run at once, at most 8 per partition, never two of one key, and each
// key's messages in publish order.
func testConcurrencyKeepsKeyOrder(t *testing.T, h Harness) {
	c := newClient(t, h)
	topic := pubsub.NewTopic[order](uniqueName(t, "orders"), pubsub.WithKey(func(o order) string { return o.Key }))
	f := newInFlight()
	var handled atomic.Int64
	err := pubsub.Subscribe(c, topic, "g1", func(_ context.Context, m *pubsub.Message[order]) error {
		f.enter(m.Key, m.Payload.Amount)
		time.Sleep(2 * time.Millisecond)
		f.leave(m.Key)
		handled.Add(1)
		return nil
	}, pubsub.WithDelivery(pubsub.Delivery{Concurrency: 8}))
	if err != nil {
		t.Fatal(err)
	}
	const keys, perKey = 20, 25
	msgs := make([]order, 0, keys*perKey)
	for i := range keys * perKey {
		msgs = append(msgs, order{Key: fmt.Sprintf("k%d", i%keys), Amount: i / keys})
	}
	if err := pubsub.PublishBatch(context.Background(), c, topic, msgs); err != nil {
		t.Fatal(err)
	}
	pubsubtest.Run(t, c)
	waitCount(t, &handled, keys*perKey, h.Timeout)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.keyPeak > 1 {
		t.Errorf("two handlers of one key ran at once (peak %d); Ordered allows one per key", f.keyPeak)
	}
	if f.peak < 2 || f.peak > 8*h.partitions() {
		t.Errorf("peak %d handlers at once; want concurrency, at most 8 per partition (%d partitions)", f.peak, h.partitions())
	}
	for key, seq := range f.seq {
		for i, n := range seq {
			if n != i {
				t.Fatalf("key %s handled in the order %v, want 0, 1, 2, ...", key, seq)
			}
		}
	}
}

// testConcurrencyUnordered: with Concurrency 4 and Unordered delivery, messages of one
// key are handled up to 4 at once.
func testConcurrencyUnordered(t *testing.T, h Harness) {
	c := newClient(t, h)
	topic := pubsub.NewTopic[order](uniqueName(t, "orders"), pubsub.WithKey(func(o order) string { return o.Key }))
	f := newInFlight()
	var handled atomic.Int64
	err := pubsub.Subscribe(c, topic, "g1", func(_ context.Context, m *pubsub.Message[order]) error {
		f.enter(m.Key, m.Payload.Amount)
		time.Sleep(10 * time.Millisecond)
		f.leave(m.Key)
		handled.Add(1)
		return nil
	}, pubsub.WithDelivery(pubsub.Delivery{Concurrency: 4, Ordering: pubsub.Unordered}))
	if err != nil {
		t.Fatal(err)
	}
	msgs := make([]order, 40)
	for i := range msgs {
		msgs[i] = order{Key: "one", Amount: i}
	}
	if err := pubsub.PublishBatch(context.Background(), c, topic, msgs); err != nil {
		t.Fatal(err)
	}
	pubsubtest.Run(t, c)
	waitCount(t, &handled, len(msgs), h.Timeout)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.keyPeak < 2 || f.keyPeak > 4 {
		t.Errorf("peak %d handlers of one key at once; Unordered with Concurrency 4 allows up to 4", f.keyPeak)
	}
}

// testConcurrencyRetryHoldsOnlyItsKey: an in-place retry holds back the later
// messages of its own key only; the other keys go on meanwhile.
func testConcurrencyRetryHoldsOnlyItsKey(t *testing.T, h Harness) {
	c := newClient(t, h)
	topic := pubsub.NewTopic[order](uniqueName(t, "orders"), pubsub.WithKey(func(o order) string { return o.Key }))
	var mu sync.Mutex
	var log []string
	failed := false
	done := make(chan struct{}, 20)
	fastLeft, fastDone := 8, make(chan struct{}) // closed when every fast key is handled
	err := pubsub.Subscribe(c, topic, "g1", func(_ context.Context, m *pubsub.Message[order]) error {
		name := fmt.Sprintf("%s#%d", m.Key, m.Payload.Amount)
		mu.Lock()
		if name == "slow#0" && !failed {
			failed = true
			log = append(log, "slow#0 failed")
			mu.Unlock()
			return errors.New("once")
		}
		mu.Unlock()
		if name == "slow#0" {
			// The retry: the fast keys must not need it to go on. It waits for them
			// instead of trusting its 300 ms backoff to outlast them on a loaded
			// machine; were they held behind it, they would come after it anyway.
			select {
			case <-fastDone:
			case <-time.After(h.Timeout):
			}
		}
		mu.Lock()
		defer mu.Unlock()
		log = append(log, name)
		if strings.HasPrefix(name, "fast") {
			if fastLeft--; fastLeft == 0 {
				close(fastDone)
			}
		}
		done <- struct{}{}
		return nil
	}, pubsub.WithDelivery(pubsub.Delivery{Concurrency: 4, Retry: 1, BackoffDelay: 150 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	msgs := []order{{Key: "slow", Amount: 0}, {Key: "slow", Amount: 1}}
	for i := range 8 {
		msgs = append(msgs, order{Key: fmt.Sprintf("fast%d", i), Amount: 0})
	}
	if err := pubsub.PublishBatch(context.Background(), c, topic, msgs); err != nil {
		t.Fatal(err)
	}
	pubsubtest.Run(t, c)
	for range len(msgs) {
		select {
		case <-done:
		case <-time.After(h.Timeout):
			mu.Lock()
			t.Fatalf("handled only %v", log)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	pos := map[string]int{}
	for i, e := range log {
		pos[e] = i
	}
	if pos["slow#1"] < pos["slow#0"] {
		t.Fatalf("slow#1 ran before slow#0 was retried: %v", log)
	}
	for i := range 8 {
		if p, ok := pos[fmt.Sprintf("fast%d#0", i)]; !ok || p > pos["slow#0"] {
			t.Fatalf("fast%d#0 waited for slow#0's retry, which holds back only its own key: %v", i, log)
		}
	}
}

// testConcurrencyRetryFreesWorkers: an in-place retry's wait does not hold one of the
// Concurrency handlers: with Concurrency 2 and two keys waiting for a long retry at
// once, the other keys are handled meanwhile (an audit saw them wait for the retries).
func testConcurrencyRetryFreesWorkers(t *testing.T, h Harness) {
	c := newClient(t, h)
	topic := pubsub.NewTopic[order](uniqueName(t, "orders"), pubsub.WithKey(func(o order) string { return o.Key }))
	failing := make(chan string, 2)
	handled := make(chan string, 16)
	err := pubsub.Subscribe(c, topic, "g1", func(_ context.Context, m *pubsub.Message[order]) error {
		if strings.HasPrefix(m.Key, "stuck") {
			if m.Attempt == 1 {
				failing <- m.Key
			}
			return errors.New("not yet")
		}
		handled <- m.Key
		return nil
	}, pubsub.WithDelivery(pubsub.Delivery{Concurrency: 2, Retry: 1, BackoffDelay: time.Hour})) // ends with the drain
	if err != nil {
		t.Fatal(err)
	}
	msgs := []order{{Key: "stuck0"}, {Key: "stuck1"}}
	if err := pubsub.PublishBatch(context.Background(), c, topic, msgs); err != nil {
		t.Fatal(err)
	}
	pubsubtest.Run(t, c)
	for range 2 {
		select {
		case <-failing:
		case <-time.After(h.Timeout):
			t.Fatal("the failing keys were not handled")
		}
	}
	msgs = msgs[:0]
	for i := range 8 {
		msgs = append(msgs, order{Key: fmt.Sprintf("free%d", i)})
	}
	if err := pubsub.PublishBatch(context.Background(), c, topic, msgs); err != nil {
		t.Fatal(err)
	}
	for i := range msgs {
		select {
		case <-handled:
		case <-time.After(h.Timeout):
			t.Fatalf("%d of %d other keys handled within %s while two keys wait for their retry: the waits hold the handlers",
				i, len(msgs), h.Timeout)
		}
	}
}

// testCommitsLowestUnfinished: with several messages in flight, a group's position is
// the lowest offset not finished: a member that acks all but one and leaves hands its
// successor that one first, and nothing acked before it again.
func testCommitsLowestUnfinished(t *testing.T, h Harness) {
	tr := newTransport(t, h)
	topic := uniqueName(t, "window")
	var msgs []*message.Message
	for i := range 10 {
		m := message.NewMessage(fmt.Sprint(i), nil)
		m.Metadata.Set(metadata.Key, "one") // one partition
		msgs = append(msgs, m)
	}
	publishRaw(t, tr, topic, msgs...)
	opts := transport.SubscribeOptions{Group: "g", Concurrency: 4, Unordered: true, Drain: 200 * time.Millisecond}
	ctx, leave := context.WithCancel(context.Background())
	ch := subscribeWith(t, tr, ctx, topic, opts)
	// Four workers hand over what they take in whatever order they run: receive all
	// ten, holding 2 and acking the nine others, however late each comes.
	var held *message.Message
	acked := map[string]bool{}
	for held == nil || len(acked) < 9 {
		m := next(t, ch, h.Timeout)
		if m.UUID == "2" {
			held = m // never finished
			continue
		}
		m.Ack()
		acked[m.UUID] = true
	}
	leave()
	for range ch {
	}
	ch = subscribe(t, tr, topic, "g")
	first := next(t, ch, h.Timeout)
	if first.UUID != "2" {
		t.Fatalf("the next member began at %s; the lowest unfinished message is 2", first.UUID)
	}
	first.Ack()
	for _, m := range receive(t, ch, 7, h.Timeout) {
		if m.UUID == "0" || m.UUID == "1" {
			t.Fatalf("message %s, finished below the committed position, came again", m.UUID)
		}
	}
}

func waitCount(t *testing.T, n *atomic.Int64, want int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for n.Load() < int64(want) {
		if time.Now().After(deadline) {
			t.Fatalf("handled %d of %d within %s", n.Load(), want, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testConcurrencyRefused: on a transport without Capabilities.Concurrency, Subscribe
// refuses Concurrency above 1 with an error that says why.
func testConcurrencyRefused(t *testing.T, h Harness) {
	c := newClient(t, h)
	topic := pubsub.NewTopic[order](uniqueName(t, "orders"))
	err := pubsub.Subscribe(c, topic, "g1", newRecorder[order]().handle, pubsub.WithDelivery(pubsub.Delivery{Concurrency: 4}))
	if !errors.Is(err, pubsub.ErrInvalidOption) || !strings.Contains(err.Error(), "Concurrency") {
		t.Fatalf("Subscribe with Concurrency 4: %v, want ErrInvalidOption naming Concurrency", err)
	}
}
