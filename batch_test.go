package pubsub_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/pubsubtest"
)

type row struct {
	ID string `json:"id"`
}

// TestBatchOptionsRefused: WithBatch belongs to SubscribeBatch alone, and
// SubscribeBatch refuses a batch bound it cannot keep.
func TestBatchOptionsRefused(t *testing.T) {
	h := pubsubtest.New(t)
	topic := pubsub.NewTopic[row]("batch-refused")
	ok := func(context.Context, *pubsub.Message[row]) error { return nil }
	if err := pubsub.Subscribe(h.Client, topic, "g", ok, pubsub.WithBatch(10, time.Second)); !errors.Is(err, pubsub.ErrInvalidOption) {
		t.Errorf("Subscribe with WithBatch: %v, want ErrInvalidOption", err)
	}
	r, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	if err := pubsub.SubscribeOnRouter(r, h.Client, topic, "g", ok, pubsub.WithBatch(10, time.Second)); !errors.Is(err, pubsub.ErrInvalidOption) {
		t.Errorf("SubscribeOnRouter with WithBatch: %v, want ErrInvalidOption", err)
	}
	batch := pubsubtest.RecordBatches[row](nil).Handler
	for _, opt := range []pubsub.SubscribeOption{pubsub.WithBatch(0, time.Second), pubsub.WithBatch(pubsub.MaxBatch+1, 0), pubsub.WithBatch(5, -time.Second)} {
		if err := pubsub.SubscribeBatch(h.Client, topic, "g", batch, opt); !errors.Is(err, pubsub.ErrInvalidOption) {
			t.Errorf("SubscribeBatch with a bad WithBatch: %v, want ErrInvalidOption", err)
		}
	}
	tooMany := pubsub.WithDelivery(pubsub.Delivery{Concurrency: 4})
	if err := pubsub.SubscribeBatch(h.Client, topic, "g", batch, pubsub.WithBatch(pubsub.MaxBatch, 0), tooMany); !errors.Is(err, pubsub.ErrInvalidOption) {
		t.Errorf("SubscribeBatch holding 50,000 messages of a partition: %v, want ErrInvalidOption", err)
	}
	if err := pubsub.SubscribeBatch[row](h.Client, topic, "g", nil); !errors.Is(err, pubsub.ErrInvalidOption) {
		t.Errorf("SubscribeBatch with a nil handler: %v, want ErrInvalidOption", err)
	}
}

// TestFailedIn: how a batch handler's error is read per message.
func TestFailedIn(t *testing.T) {
	a, b, c := &pubsub.Message[row]{ID: "a"}, &pubsub.Message[row]{ID: "b"}, &pubsub.Message[row]{ID: "c"}
	boom := errors.New("boom")
	err := errors.Join(pubsub.Failed(a, boom), pubsub.Failed(b, nil))
	if got := pubsub.FailedIn(err, a); !errors.Is(got, boom) {
		t.Errorf("a: %v, want boom", got)
	}
	if got := pubsub.FailedIn(err, b); got == nil {
		t.Error("b: nil, want its failure")
	}
	if got := pubsub.FailedIn(err, c); got != nil {
		t.Errorf("c: %v, want nil (not failed)", got)
	}
	wrapped := errors.Join(boom, pubsub.Failed(a, boom))
	if got := pubsub.FailedIn(wrapped, c); got != wrapped {
		t.Errorf("c under a whole-batch error: %v, want the error", got)
	}
	if got := pubsub.FailedIn(errors.Join(pubsub.Failed(a, pubsub.Permanent(boom))), a); !pubsub.IsPermanent(got) {
		t.Errorf("a: %v, want a permanent failure", got)
	}
}

// TestBatchPanicFailsWholeBatch: a panicking batch handler fails every message of the
// batch; with WithPermanentPanics each is dead-lettered at once.
func TestBatchPanicFailsWholeBatch(t *testing.T) {
	h := pubsubtest.New(t)
	topic := pubsub.NewTopic[row]("batch-panic")
	rec := pubsubtest.RecordBatches(func(context.Context, []*pubsub.Message[row]) error { panic("bad batch") })
	if err := pubsub.SubscribeBatch(h.Client, topic, "g", rec.Handler, pubsub.WithBatch(10, 200*time.Millisecond), pubsub.WithPermanentPanics()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"p1", "p2"} {
		if err := pubsub.Publish(context.Background(), h.Client, topic, row{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range h.WaitDeadLettered(topic.Name(), "g", 2) {
		if !strings.Contains(e.Err.Error(), "bad batch") {
			t.Errorf("dead-lettered with %v, want the panic", e.Err)
		}
	}
}

// TestBatchSpanLinksProducers: one CONSUMER span per batch call, linked to the
// producer span of each of its messages; the trace log has a line per message.
func TestBatchSpanLinksProducers(t *testing.T) {
	o := newObserved(t, pubsub.TraceLogOptions{})
	topic := pubsub.NewTopic[row]("batch-spans")
	rec := pubsubtest.RecordBatches[row](nil)
	if err := pubsub.SubscribeBatch(o.h.Client, topic, "g", rec.Handler, pubsub.WithBatch(3, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"s1", "s2", "s3"} {
		if err := pubsub.Publish(context.Background(), o.h.Client, topic, row{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	calls := rec.Wait(t, 3)
	o.h.WaitHandled(topic.Name(), "g", 3)
	senders := map[string]bool{}
	var batchSpans int
	for _, s := range o.spans.Ended() {
		if s.Name() == "send batch-spans" {
			senders[s.SpanContext().SpanID().String()] = true
		}
	}
	for _, s := range o.spans.Ended() {
		for _, a := range s.Attributes() {
			if a.Key == attribute.Key("messaging.batch.message_count") {
				batchSpans++
				if int(a.Value.AsInt64()) != len(s.Links()) {
					t.Errorf("batch span of %d messages has %d links", a.Value.AsInt64(), len(s.Links()))
				}
				for _, l := range s.Links() {
					if !senders[l.SpanContext.SpanID().String()] {
						t.Errorf("a batch span links %s, not a producer span", l.SpanContext.SpanID())
					}
				}
			}
		}
	}
	if batchSpans != len(calls) {
		t.Errorf("%d batch spans for %d calls", batchSpans, len(calls))
	}
	processed := 0
	for _, l := range o.log.lines(t) {
		if l["event"] == "processed" {
			processed++
		}
	}
	if processed != 3 {
		t.Errorf("%d processed lines in the trace log, want one per message (3)", processed)
	}
}

// TestBatchPauseResume: a paused batch subscription hands nothing to its handler; on
// Resume the messages come in batches.
func TestBatchPauseResume(t *testing.T) {
	h := pubsubtest.New(t)
	topic := pubsub.NewTopic[row]("batch-pause")
	rec := pubsubtest.RecordBatches[row](nil)
	if err := pubsub.SubscribeBatch(h.Client, topic, "g", rec.Handler, pubsub.WithBatch(10, 100*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := h.Client.Pause(topic.Name(), "g"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"q1", "q2", "q3"} {
		if err := pubsub.Publish(context.Background(), h.Client, topic, row{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond) // gives a wrong delivery while paused the chance to show
	if calls := rec.Calls(); len(calls) != 0 {
		t.Fatalf("%d batches handled while paused", len(calls))
	}
	if err := h.Client.Resume(topic.Name(), "g"); err != nil {
		t.Fatal(err)
	}
	if got := pubsubtest.Succeeded(rec.Wait(t, 3)); len(got) != 3 {
		t.Errorf("handled %d messages after Resume, want 3", len(got))
	}
}

// TestBatchSpanFailedEvents: a message failed alone shows as a message_failed event
// (its id and reason) on the batch span, which is Error; each message keeps its own
// CONSUMER span too, child of its producer span.
func TestBatchSpanFailedEvents(t *testing.T) {
	o := newObserved(t, pubsub.TraceLogOptions{})
	topic := pubsub.NewTopic[row]("batch-span-failed")
	var mu sync.Mutex
	var badID string
	rec := pubsubtest.RecordBatches(func(_ context.Context, ms []*pubsub.Message[row]) error {
		for _, m := range ms {
			if m.Payload.ID == "bad" {
				mu.Lock()
				badID = m.ID
				mu.Unlock()
				return pubsub.Failed(m, pubsub.Permanent(errors.New("bad row")))
			}
		}
		return nil
	})
	if err := pubsub.SubscribeBatch(o.h.Client, topic, "g", rec.Handler, pubsub.WithBatch(2, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"ok", "bad"} {
		if err := pubsub.Publish(context.Background(), o.h.Client, topic, row{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	o.h.WaitDeadLettered(topic.Name(), "g", 1)
	o.h.WaitHandled(topic.Name(), "g", 1)
	var events []string
	perMessage := 0
	// A delivery's span ends as its chain returns, just after the events above.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		events, perMessage = batchSpanEvents(o.spans.Ended(), "process batch-span-failed")
		if perMessage >= 2 && len(events) > 0 || time.Now().After(deadline) {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(events, "|") != badID+"|bad row" {
		t.Errorf("message_failed events %q, want the bad message's id and reason", events)
	}
	if perMessage != 2 {
		t.Errorf("%d per-message spans, want 2 (one per message)", perMessage)
	}
}

// batchSpanEvents returns the message_failed events' id and reason of the batch
// spans named name, and how many per-message spans of that name ended.
func batchSpanEvents(spans []sdktrace.ReadOnlySpan, name string) (events []string, perMessage int) {
	for _, s := range spans {
		batch := false
		for _, a := range s.Attributes() {
			batch = batch || a.Key == attribute.Key("messaging.batch.message_count")
		}
		if s.Name() != name {
			continue
		}
		if !batch {
			perMessage++
			continue
		}
		for _, e := range s.Events() {
			if e.Name != "message_failed" {
				continue
			}
			for _, a := range e.Attributes {
				if a.Key == "messaging.message.id" || a.Key == "exception.message" {
					events = append(events, a.Value.AsString())
				}
			}
		}
	}
	return events, perMessage
}
