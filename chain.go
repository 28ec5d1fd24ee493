package pubsub

import (
	"context"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/middleware"
)

// chain wraps a subscription's handler in the client's middleware for one of its
// feeds. This is the one place the order is decided; outermost first, the same list
// as DESIGN.md's Consuming section:
//
//		trust → tracing → observe → correlation → dead letter → [wait due] → retry → drain → timeout → recover → decode → handler
//
//	  - trust drops the bookkeeping keys (attempt, due time, origin) a record brings
//	    from outside the subscription's own topics, and bounds them on those topics;
//	  - tracing runs the delivery in its CONSUMER span (one span per delivery, around
//	    every in-place attempt);
//	  - observe makes the span events, metrics, trace log and hooks hear every event;
//	  - correlation puts the correlation id in the context;
//	  - dead letter publishes the final failure to the dead-letter topic;
//	  - wait due (retry topics only) holds a message until its retry is due;
//	  - retry is middleware.Retry for Ordered delivery (in place; its wait gives up
//	    the message's Concurrency slot, see transport.Waiting) and middleware.RetryTopic
//	    for Unordered;
//	  - drain gives the handler a context with the engine's handler lifetime
//	    (engine.Handlers) instead of the delivery's, so that a handler whose partition
//	    is revoked may finish within the drain time; the stages above still see the
//	    delivery's context, whose end interrupts retry waits;
//	  - timeout and recover bound and guard each attempt;
//	  - decode and handler are h, made by Subscribe: the payload limit, decode (a
//	    failure is permanent) and the typed handler.
func (c *Client) chain(s *subscription, f *feed, h message.HandlerFunc) (message.HandlerFunc, error) {
	d := *s.delivery
	tracing, err := middleware.Tracing(middleware.TracingConfig{Provider: c.opts.tracerProvider,
		System: c.obs.system, Topic: s.topic, Group: s.group})
	if err != nil {
		return nil, err
	}
	observe, err := middleware.Observe(middleware.ObserveConfig{Topic: s.topic, Group: s.group, Observers: c.obs.list})
	if err != nil {
		return nil, err
	}
	deadLetter, err := middleware.DeadLetter(middleware.DeadLetterConfig{Publisher: c.tr, Topic: s.deadLetterTopic,
		SourceTopic: s.topic, Group: s.group, Knative: s.knative})
	if err != nil {
		return nil, err
	}
	var retry message.HandlerMiddleware
	if d.Ordering == Unordered {
		retry, err = middleware.RetryTopic(middleware.RetryTopicConfig{Publisher: c.tr, MaxRetries: d.Retry, Backoff: d.backoff(),
			Topic: func(n int) string { return RetryTopicName(s.topic, s.group, n) }})
	} else {
		retry, err = middleware.Retry(middleware.RetryConfig{MaxRetries: d.Retry, Backoff: d.backoff(), Stop: c.engine.Draining()})
	}
	if err != nil {
		return nil, err
	}
	timeout, err := middleware.Timeout(d.Timeout)
	if err != nil {
		return nil, err
	}
	recoverer := middleware.Recover
	if s.permanentPanics {
		recoverer = middleware.RecoverPermanent
	}

	stages := []message.HandlerMiddleware{trust(f, d), tracing, observe, middleware.CorrelationID, deadLetter}
	if f.kind == retryFeed {
		waitDue, err := middleware.WaitDue(middleware.WaitDueConfig{Stop: c.engine.Draining(), MaxWait: d.Backoff(f.retry)})
		if err != nil {
			return nil, err
		}
		stages = append(stages, waitDue)
	}
	stages = append(stages, retry, c.detach, timeout, recoverer)
	for i := len(stages) - 1; i >= 0; i-- {
		h = stages[i](h)
	}
	return h, nil
}

// trust keeps a subscription's bookkeeping honest: a record on the topic itself comes
// from any producer, so the keys only the subscription's own topics may carry
// (attempt, first failure, due time, origin, replayed) are dropped and it starts at
// attempt 1 with the full policy; a record on retry topic n is at attempt n+1
// whatever it says; a replayed record starts at attempt 1.
func trust(f *feed, d Delivery) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			md := msg.Metadata
			switch f.kind {
			case mainFeed:
				metadata.DropBookkeeping(md)
			case replayFeed:
				delete(md, metadata.Attempt)
				delete(md, metadata.RetryDue)
				delete(md, metadata.FirstFailure)
			case retryFeed:
				md[metadata.Attempt] = attemptNames[min(f.retry+1, len(attemptNames)-1)]
				if due, ok := metadata.ParseTime(md[metadata.RetryDue]); ok && time.Until(due) > d.Backoff(f.retry) {
					md[metadata.RetryDue] = metadata.FormatTime(time.Now().Add(d.Backoff(f.retry)))
				}
			}
			return h(msg)
		}
	}
}

// attemptNames are the attempt numbers as metadata holds them, made once.
var attemptNames = func() []string {
	names := make([]string, MaxDeliveryRetry+2)
	for i := range names {
		names[i] = strconv.Itoa(i)
	}
	return names
}()

// detach gives the handler a context that keeps the message's values but not its
// cancellation: transports end a message's context when its subscription stops or
// its partition is revoked, and a graceful drain must let the handler finish. The
// context ends when the drain timeout runs out or the client closes.
func (c *Client) detach(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		parent := msg.Context()
		msg.SetContext(detached{Context: parent, life: c.engine.Handlers()})
		produced, err := h(msg)
		msg.SetContext(parent)
		return produced, err
	}
}

// detached has the values of its Context and the lifetime of life.
type detached struct {
	context.Context
	life context.Context
}

func (d detached) Deadline() (time.Time, bool) { return d.life.Deadline() }
func (d detached) Done() <-chan struct{}       { return d.life.Done() }
func (d detached) Err() error                  { return d.life.Err() }

// AfterFunc lets context.WithCancel and context.AfterFunc on a detached context
// register with its lifetime instead of starting a goroutine to watch it.
func (d detached) AfterFunc(f func()) func() bool { return context.AfterFunc(d.life, f) }
