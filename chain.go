package pubsub

import (
	"github.com/ThreeDotsLabs/watermill/message"

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
//	  - observe is the Observation of the client's observers (span events, metrics,
//	    trace log, hooks); events flow down: the stages inside that report (dead
//	    letter, wait due, retry) are given it here and call it, nothing is looked up
//	    in the message's context, and the stage itself passes the message on;
//	  - correlation resolves the correlation id into the metadata and puts it in the
//	    context, in the one allocation per message that also holds drain's context;
//	  - dead letter publishes the final failure to the dead-letter topic;
//	  - wait due (retry topics only) holds a message until its retry is due;
//	  - retry is middleware.Retry for Ordered delivery (in place; its wait gives up
//	    the message's Concurrency slot, see transport.Waiting) and middleware.RetryTopic
//	    for Unordered; either reports every attempt and retry;
//	  - drain gives the handler a context with the engine's handler lifetime
//	    (engine.Handlers) instead of the delivery's, so that a handler whose partition
//	    is revoked may finish within the drain time; the stages above still see the
//	    delivery's context, whose end interrupts retry waits;
//	  - timeout and recover bound and guard each attempt (for a batch subscription the
//	    timeout bounds each call of the batch handler instead, from its start, so that
//	    a message's time waiting for its batch does not count: attemptBatch);
//	  - decode and handler are h, decodeStage (message.go): the payload limit,
//	    decode (a failure is permanent, no media type is parsed for the codec's own
//	    content type, Message.Metadata is made only for a message with keys for the
//	    handler; on a dead-letter topic the letter still reaches the handler, with
//	    DecodeError set) and the call of the typed handler.
func (c *Client) chain(s *subscription, f *feed, h message.HandlerFunc) (message.HandlerFunc, error) {
	d := *s.delivery
	tracing, err := middleware.Tracing(middleware.TracingConfig{Provider: c.opts.tracerProvider,
		System: c.obs.system, Topic: s.topic, Group: s.group})
	if err != nil {
		return nil, err
	}
	observe := middleware.NewObservation(middleware.ObserveConfig{Topic: s.topic, Group: s.group, Observers: c.obs.list})
	deadLetter, err := middleware.DeadLetter(middleware.DeadLetterConfig{Publisher: c.tr, Topic: s.deadLetterTopic,
		SourceTopic: s.topic, Group: s.group, Knative: s.knative, Logger: c.opts.logger, Events: observe})
	if err != nil {
		return nil, err
	}
	var retry message.HandlerMiddleware
	if d.Ordering == Unordered {
		retry, err = middleware.RetryTopic(middleware.RetryTopicConfig{Publisher: c.tr, MaxRetries: d.Retry, Backoff: d.backoff(),
			Topic: func(n int) string { return RetryTopicName(s.topic, s.group, n) }, Events: observe})
	} else {
		retry, err = middleware.Retry(middleware.RetryConfig{MaxRetries: d.Retry, Backoff: d.backoff(), Stop: c.engine.Draining(), Events: observe})
	}
	if err != nil {
		return nil, err
	}
	perAttempt := d.Timeout
	if s.batch != nil {
		perAttempt = 0 // each attempt of a batch gets Timeout as a whole (attemptBatch)
	}
	timeout, err := middleware.Timeout(perAttempt)
	if err != nil {
		return nil, err
	}
	recoverer := middleware.Recover
	if s.permanentPanics {
		recoverer = middleware.RecoverPermanent
	}

	trust, err := middleware.Trust(middleware.TrustConfig{Feed: f.kind, Retry: f.retry, MaxWait: d.Backoff(f.retry), DeadLetters: s.letters})
	if err != nil {
		return nil, err
	}
	stages := []message.HandlerMiddleware{trust, tracing, observe.Middleware, middleware.CorrelationID, deadLetter}
	if f.kind == middleware.FeedRetry {
		waitDue, err := middleware.WaitDue(middleware.WaitDueConfig{Stop: c.engine.Draining(), MaxWait: d.Backoff(f.retry), Events: observe})
		if err != nil {
			return nil, err
		}
		stages = append(stages, waitDue)
	}
	stages = append(stages, retry, middleware.Detach(c.engine.Handlers()), timeout, recoverer)
	for i := len(stages) - 1; i >= 0; i-- {
		h = stages[i](h)
	}
	return h, nil
}
