package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/middleware"
)

// events records the kinds of the events it hears, in order.
type events struct {
	mu    sync.Mutex
	kinds []string
}

func (e *events) Observe(_ context.Context, ev middleware.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.kinds = append(e.kinds, string(ev.Kind))
}

func (e *events) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return strings.Join(e.kinds, ",")
}

// chainOf wraps h in mw, outermost first, as a router would.
func chainOf(h message.HandlerFunc, mw ...message.HandlerMiddleware) message.HandlerFunc {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}

// TestEventsFlowDown: the stages report to the Observation they were given when the
// chain was built, with nothing of it in the message's context: the handler sees the
// context the message came with; a failed attempt, its retry, the attempt that
// succeeds and, for a message that fails for good, its dead letter are heard once
// each, in order.
func TestEventsFlowDown(t *testing.T) {
	heard := &events{}
	observe := middleware.NewObservation(middleware.ObserveConfig{Topic: "jobs", Group: "workers", Observers: []middleware.Observer{heard}})
	letters := &capture{}
	deadLetter := must(middleware.DeadLetter(middleware.DeadLetterConfig{Publisher: letters, Topic: "jobs.dlq", Events: observe}))
	retry := must(middleware.Retry(middleware.RetryConfig{MaxRetries: 1, Events: observe}))
	type key struct{}
	ctx := context.WithValue(context.Background(), key{}, "mine")
	calls := 0
	h := chainOf(func(msg *message.Message) ([]*message.Message, error) {
		calls++
		if msg.Context() != ctx {
			t.Errorf("the handler's context is %v, want the message's own", msg.Context())
		}
		if string(msg.Payload) == "bad" || calls == 1 {
			return nil, errors.New("not yet")
		}
		return nil, nil
	}, observe.Middleware, deadLetter, retry)

	msg := message.NewMessage("m1", []byte("flaky"))
	msg.SetContext(ctx)
	if _, err := h(msg); err != nil {
		t.Fatal(err)
	}
	if got := heard.String(); got != "failed,retried,processed" {
		t.Errorf("events %s, want failed,retried,processed", got)
	}

	heard.kinds = nil
	bad := message.NewMessage("m2", []byte("bad"))
	bad.SetContext(ctx)
	if _, err := h(bad); err != nil {
		t.Fatal(err)
	}
	if got := heard.String(); got != "failed,retried,failed,dead_lettered" || len(letters.msgs) != 1 {
		t.Errorf("events %s and %d letters, want failed,retried,failed,dead_lettered and 1", got, len(letters.msgs))
	}
}

// TestWaitDueCutShortIsReported: a retry-topic message whose wait is cut short is
// heard once as a failed attempt, from WaitDue, with RetryTopic reporting the attempts
// to the same Observation; the handler never runs.
func TestWaitDueCutShortIsReported(t *testing.T) {
	heard := &events{}
	observe := middleware.NewObservation(middleware.ObserveConfig{Topic: "jobs", Group: "workers", Observers: []middleware.Observer{heard}})
	stop := make(chan struct{})
	close(stop)
	waitDue := must(middleware.WaitDue(middleware.WaitDueConfig{Stop: stop, Events: observe}))
	retry := must(middleware.RetryTopic(middleware.RetryTopicConfig{Publisher: &capture{}, MaxRetries: 1,
		Topic: func(int) string { return "jobs.retry" }, Events: observe}))
	h := chainOf(func(*message.Message) ([]*message.Message, error) {
		t.Error("the handler ran before the message was due")
		return nil, nil
	}, observe.Middleware, waitDue, retry)

	msg := message.NewMessage("m1", []byte("x"))
	msg.Metadata.Set(metadata.RetryDue, metadata.FormatTime(time.Now().Add(time.Hour)))
	msg.Metadata.Set(metadata.Attempt, "2")
	if _, err := h(msg); !errors.Is(err, middleware.ErrInterrupted) {
		t.Fatalf("error %v, want ErrInterrupted", err)
	}
	if got := heard.String(); got != "failed" {
		t.Errorf("events %s, want one failed", got)
	}
}

// TestObserveAloneReportsTheCall: an Observation no retry reports to reports each
// call of the stages inside as one attempt.
func TestObserveAloneReportsTheCall(t *testing.T) {
	heard := &events{}
	observe := must(middleware.Observe(middleware.ObserveConfig{Topic: "jobs", Observers: []middleware.Observer{heard}}))
	h := chainOf(func(msg *message.Message) ([]*message.Message, error) {
		if string(msg.Payload) == "bad" {
			return nil, errors.New("bad")
		}
		return nil, nil
	}, observe)
	h(message.NewMessage("m1", []byte("good")))
	h(message.NewMessage("m2", []byte("bad")))
	if got := heard.String(); got != "processed,failed" {
		t.Errorf("events %s, want processed,failed", got)
	}
}

// TestCorrelationAndDetachShareOneContext: Detach right inside CorrelationID gives the
// handler a context with the correlation id, the lifetime of Detach's context and
// the delivery behind it (DeliveryOf), in the correlation stage's one allocation, the
// same context for every attempt.
func TestCorrelationAndDetachShareOneContext(t *testing.T) {
	life, endLife := context.WithCancel(context.Background())
	defer endLife()
	delivery, endDelivery := context.WithCancel(context.Background())
	var seen []context.Context
	retry := must(middleware.Retry(middleware.RetryConfig{MaxRetries: 1}))
	h := chainOf(func(msg *message.Message) ([]*message.Message, error) {
		seen = append(seen, msg.Context())
		if len(seen) == 1 {
			return nil, errors.New("once more")
		}
		return nil, nil
	}, middleware.CorrelationID, retry, middleware.Detach(life))
	msg := message.NewMessage("m1", nil)
	msg.Metadata.Set(metadata.CorrelationID, "conv-1")
	msg.SetContext(delivery)
	if _, err := h(msg); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 || seen[0] != seen[1] {
		t.Fatalf("attempts saw %d contexts %v, want one context twice", len(seen), seen)
	}
	ctx := seen[0]
	if id := middleware.CorrelationIDFromContext(ctx); id != "conv-1" {
		t.Errorf("correlation id %q, want conv-1", id)
	}
	endDelivery()
	if ctx.Err() != nil || middleware.DeliveryOf(ctx).Err() == nil {
		t.Errorf("after the delivery ended: handler context %v, delivery %v; want alive, ended", ctx.Err(), middleware.DeliveryOf(ctx).Err())
	}
	endLife()
	if ctx.Err() == nil {
		t.Error("the handler's context outlived Detach's lifetime")
	}

	once := chainOf(func(*message.Message) ([]*message.Message, error) { return nil, nil }, middleware.CorrelationID, middleware.Detach(context.Background()))
	m := message.NewMessage("m2", nil)
	m.Metadata.Set(metadata.CorrelationID, "conv-2")
	m.SetContext(context.Background())
	if n := testing.AllocsPerRun(100, func() { once(m) }); n > 1 {
		t.Errorf("CorrelationID and Detach: %v allocations per message, want 1", n)
	}
}

// TestRedeliverIsNoAttempt: a handler error that wraps ErrRedeliver (a batch gave the
// message back unhandled) is no attempt: Retry and RetryTopic return it at once,
// without a failed or retried event, a retry or a retry-topic publish, and DeadLetter
// passes it through, so the message is nacked.
func TestRedeliverIsNoAttempt(t *testing.T) {
	given := fmt.Errorf("held back: %w", middleware.ErrRedeliver)
	for _, tc := range []struct {
		name  string
		retry func(middleware.Reporter, *capture) message.HandlerMiddleware
	}{
		{"Retry", func(r middleware.Reporter, _ *capture) message.HandlerMiddleware {
			return must(middleware.Retry(middleware.RetryConfig{MaxRetries: 3, Events: r}))
		}},
		{"RetryTopic", func(r middleware.Reporter, retries *capture) message.HandlerMiddleware {
			return must(middleware.RetryTopic(middleware.RetryTopicConfig{Publisher: retries, MaxRetries: 3,
				Topic: func(int) string { return "jobs.retry" }, Events: r}))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			heard := &events{}
			observe := middleware.NewObservation(middleware.ObserveConfig{Topic: "jobs", Group: "workers", Observers: []middleware.Observer{heard}})
			letters, retries := &capture{}, &capture{}
			deadLetter := must(middleware.DeadLetter(middleware.DeadLetterConfig{Publisher: letters, Topic: "jobs.dlq", Events: observe}))
			calls := 0
			h := chainOf(func(*message.Message) ([]*message.Message, error) {
				calls++
				return nil, given
			}, observe.Middleware, deadLetter, tc.retry(observe, retries))
			msg := message.NewMessage("m1", nil)
			if _, err := h(msg); !errors.Is(err, given) {
				t.Fatalf("error %v, want the handler's", err)
			}
			if got := heard.String(); got != "" || calls != 1 || len(letters.msgs) != 0 || len(retries.msgs) != 0 {
				t.Errorf("events %q, %d calls, %d letters, %d retries; want none, 1, 0, 0", got, calls, len(letters.msgs), len(retries.msgs))
			}
			if msg.Metadata.Get(metadata.FirstFailure) != "" {
				t.Error("FirstFailure set for a message that was not attempted")
			}
		})
	}
}
