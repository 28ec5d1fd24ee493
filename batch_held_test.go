package pubsub_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/pubsubtest"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/memory"
)

// traceEvents returns the trace log's lines whose body is the row id, and their events.
func traceEvents(t *testing.T, log *lockedBuffer, id string) []string {
	t.Helper()
	var out []string
	for _, l := range log.lines(t) {
		if body, _ := l["body"].(map[string]any); body["id"] == id {
			out = append(out, l["event"].(string))
		}
	}
	return out
}

// TestBatchHeldLeavesOnDrainUnattempted: Ordered, a message held back behind a
// failed message of its key waiting for its retry leaves on drain as a redelivery,
// never attempted: the trace log shows no failed or retried line for it (the failed
// message has its own).
func TestBatchHeldLeavesOnDrainUnattempted(t *testing.T) {
	tr, err := memory.New(memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	log := &lockedBuffer{}
	c, err := pubsub.New(tr, pubsub.WithTraceLog(slog.NewJSONHandler(log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	topic := pubsub.NewTopic[row]("batch-held-drain")
	h := func(_ context.Context, ms []*pubsub.Message[row]) error {
		for _, m := range ms {
			if m.Payload.ID == "first" {
				return pubsub.Failed(m, errors.New("not yet"))
			}
		}
		return nil
	}
	if err := pubsub.SubscribeBatch(c, topic, "g", h, pubsub.WithBatch(10, 200*time.Millisecond),
		pubsub.WithDelivery(pubsub.Delivery{Retry: 1, BackoffDelay: time.Hour, Ordering: pubsub.Ordered})); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- c.Run(ctx) }()
	<-c.Running()
	for _, id := range []string{"first", "held"} {
		if err := pubsub.Publish(context.Background(), c, topic, row{ID: id}, pubsub.WithMessageKey("k")); err != nil {
			t.Fatal(err)
		}
	}
	// "first" was retried: its batch finished, "held" waits behind it.
	for deadline := time.Now().Add(10 * time.Second); len(traceEvents(t, log, "first")) < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no failed and retried lines for the first message; log: %s", log.String())
		}
	}
	cancel()
	select {
	case err := <-ran:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of the drain")
	}
	for _, ev := range traceEvents(t, log, "held") {
		if ev == "failed" || ev == "retried" {
			t.Errorf("the held message has a %s line; it was never attempted (log: %s)", ev, log.String())
		}
	}
}

// TestBatchTimeoutPerBatchAttempt: with Delivery.Timeout, each call of the batch
// handler gets the timeout from its start, whatever its messages waited before: a
// message held back behind a retry for longer than the timeout, which then leads a
// batch of its own, is handled with a live context and succeeds; its wait is no
// failed attempt.
func TestBatchTimeoutPerBatchAttempt(t *testing.T) {
	h := pubsubtest.New(t)
	topic := pubsub.NewTopic[row]("batch-timeout")
	var mu sync.Mutex
	var ended []string // the messages of calls whose context had ended at the start
	failedOnce := false
	rec := pubsubtest.RecordBatches(func(ctx context.Context, ms []*pubsub.Message[row]) error {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range ms {
			if ctx.Err() != nil {
				ended = append(ended, m.Payload.ID)
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		for _, m := range ms {
			if m.Payload.ID == "k0" && !failedOnce {
				failedOnce = true
				return pubsub.Failed(m, errors.New("once"))
			}
		}
		return nil
	})
	const timeout = 200 * time.Millisecond
	if err := pubsub.SubscribeBatch(h.Client, topic, "g", rec.Handler, pubsub.WithBatch(2, 2*time.Second),
		pubsub.WithDelivery(pubsub.Delivery{Retry: 1, BackoffDelay: 3 * timeout, Timeout: timeout, Ordering: pubsub.Ordered})); err != nil {
		t.Fatal(err)
	}
	publish := func(id string) {
		if err := pubsub.Publish(context.Background(), h.Client, topic, row{ID: id}, pubsub.WithMessageKey(id[:1])); err != nil {
			t.Fatal(err)
		}
	}
	publish("k0")
	publish("k1")
	rec.WaitCalls(t, 1) // [k0 k1]: k0 failed, k1 held back behind it
	// x leads a batch that k0's retry fills: k1, still held back, then leads one of its
	// own, long after its timeout would have run out had it counted from its arrival.
	publish("x")
	h.WaitHandled(topic.Name(), "g", 3) // x, k0, k1
	calls := rec.Calls()
	mu.Lock()
	defer mu.Unlock()
	if len(ended) > 0 {
		t.Errorf("calls began with an ended context for %v (calls: %d)", ended, len(calls))
	}
	var failed []string
	for _, e := range h.Events(pubsub.EventFailed, topic.Name(), "g") {
		failed = append(failed, e.MessageID)
	}
	if len(failed) != 1 {
		t.Errorf("failed attempts of %v, want k0's one", failed)
	}
}

// flakyDLQ fails the first fails publishes to a dead-letter topic.
type flakyDLQ struct {
	transport.Transport
	fails atomic.Int32
}

func (f *flakyDLQ) Publish(topic string, msgs ...*message.Message) error {
	if strings.HasSuffix(topic, ".dlq") && f.fails.Add(-1) >= 0 {
		return errors.New("dead-letter topic unavailable")
	}
	return f.Transport.Publish(topic, msgs...)
}

// TestBatchDeadLetterFailureKeepsOrder: Ordered, a message that failed for good holds
// the later messages of its key until its dead letter is stored: while publishing it
// fails (the message is nacked and comes again) none of them is acked, and each
// succeeds only after the dead letter.
func TestBatchDeadLetterFailureKeepsOrder(t *testing.T) {
	mem, err := memory.New(memory.Config{NackDelay: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	tr := &flakyDLQ{Transport: mem}
	tr.fails.Store(2)
	var mu sync.Mutex
	payload := map[string]string{} // message id → row id
	var seq []string               // "kind row", in order
	h := pubsubtest.NewOn(t, tr, pubsub.WithEventHook(func(e pubsub.Event) {
		if e.Kind != pubsub.EventProcessed && e.Kind != pubsub.EventDeadLettered || e.Group != "g" {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		seq = append(seq, string(e.Kind)+" "+payload[e.MessageID])
	}))
	topic := pubsub.NewTopic[row]("batch-dlq-order")
	handler := func(_ context.Context, ms []*pubsub.Message[row]) error {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range ms {
			payload[m.ID] = m.Payload.ID
		}
		for _, m := range ms {
			if m.Payload.ID == "bad" {
				return pubsub.Failed(m, pubsub.Permanent(errors.New("bad row")))
			}
		}
		return nil
	}
	if err := pubsub.SubscribeBatch(h.Client, topic, "g", handler, pubsub.WithBatch(10, 100*time.Millisecond),
		pubsub.WithDelivery(pubsub.Delivery{Ordering: pubsub.Ordered})); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"bad", "after1", "after2"} {
		if err := pubsub.Publish(context.Background(), h.Client, topic, row{ID: id}, pubsub.WithMessageKey("k")); err != nil {
			t.Fatal(err)
		}
	}
	h.WaitDeadLettered(topic.Name(), "g", 1)
	h.WaitHandled(topic.Name(), "g", 2)
	mu.Lock()
	defer mu.Unlock()
	dead := -1
	for i, s := range seq {
		if s == "dead_lettered bad" {
			dead = i
		}
	}
	for i, s := range seq {
		if strings.HasPrefix(s, "processed after") && i < dead {
			t.Errorf("%s before the dead letter of bad was stored: %v", s, seq)
		}
	}
	if tr.fails.Load() >= 0 {
		t.Errorf("the dead-letter publish failed only %d times, want 2", 2-tr.fails.Load())
	}
}
