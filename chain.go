package pubsub

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/middleware"
)

// chain wraps a subscription's handler in the client's middleware. This is the one
// place the order is decided; outermost first, as DESIGN.md section 2 gives it:
//
//	detach → correlation → dead letter → [wait due] → retry → observe → timeout → recover → decode → handler
//
// detach lets a handler outlive its subscription during a drain. wait due holds a
// message from a retry topic until its retry is due (due is true for those feeds).
// retry is middleware.Retry for Ordered delivery (in place) and middleware.RetryTopic
// for Unordered. observe, inside retry, reports every attempt. Tracing and the trace
// log (outermost) come with the observability work.
func (c *Client) chain(s subscription, h message.HandlerFunc, due bool) (message.HandlerFunc, error) {
	d := *s.delivery
	deadLetter, err := middleware.DeadLetter(middleware.DeadLetterConfig{
		Publisher:   c.tr,
		Topic:       s.deadLetterTopic,
		SourceTopic: s.topic,
		Group:       s.group,
		OnDeadLetter: func(dead *message.Message, cause error) {
			cid := dead.Metadata.Get(metadata.CorrelationID)
			c.logger.Warn("pubsub: message dead-lettered", "cid", cid, "topic", s.topic, "group", s.group,
				"message_id", dead.UUID, "dead_letter_topic", s.deadLetterTopic, "error", cause)
			spans := attemptSpansFrom(dead.Context())
			ctx := spans.context(dead.Context())
			spans.end("dead_letter", attribute.String("pubsub.dead_letter_topic", s.deadLetterTopic),
				attribute.Int("pubsub.attempts", attemptOf(dead)))
			c.emit(ctx, Event{Kind: EventDeadLettered, Topic: s.topic, Group: s.group, MessageID: dead.UUID,
				CorrelationID: cid, Attempt: attemptOf(dead), Err: cause, Message: dead})
		},
	})
	if err != nil {
		return nil, err
	}
	onRetry := func(msg *message.Message, cause error, retry int, wait time.Duration) {
		cid := CorrelationID(msg.Context())
		c.logger.Debug("pubsub: message will be retried", "cid", cid, "topic", s.topic, "group", s.group,
			"message_id", msg.UUID, "retry", retry, "wait", wait, "error", cause)
		spans := attemptSpansFrom(msg.Context())
		ctx := spans.context(msg.Context())
		spans.end("retry", spanWait(retry, wait)...)
		c.emit(ctx, Event{Kind: EventRetried, Topic: s.topic, Group: s.group, MessageID: msg.UUID,
			CorrelationID: cid, Attempt: retry, Duration: wait, Err: cause, Message: msg})
	}
	var retry message.HandlerMiddleware
	if d.Ordering == Unordered {
		retry, err = middleware.RetryTopic(middleware.RetryTopicConfig{
			Publisher:  c.tr,
			Topic:      func(n int) string { return RetryTopicName(s.topic, s.group, n) },
			MaxRetries: d.Retry,
			Backoff:    d.backoff(),
			OnRetry:    onRetry,
		})
		if err != nil {
			return nil, err
		}
	} else {
		retry = middleware.Retry(middleware.RetryConfig{
			MaxRetries: d.Retry,
			Backoff:    d.backoff(),
			OnRetry:    onRetry,
			Stop:       c.draining,
		})
	}
	stages := []message.HandlerMiddleware{c.detach, c.traceDelivery, middleware.CorrelationID, deadLetter}
	if due {
		stages = append(stages, middleware.WaitDue(c.draining))
	}
	recoverer := middleware.Recover
	if s.permanentPanics {
		recoverer = middleware.RecoverPermanent
	}
	stages = append(stages, retry, c.observe(s), middleware.Timeout(d.Timeout), recoverer)
	for i := len(stages) - 1; i >= 0; i-- {
		h = stages[i](h)
	}
	return h, nil
}

// detach gives the handler a context that keeps the message's values but not its
// cancellation: transports end a message's context when its subscription stops, and a
// graceful drain must let the handler finish. The context ends when the drain timeout
// runs out or the client closes.
func (c *Client) detach(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		ctx, cancel := context.WithCancel(context.WithoutCancel(msg.Context()))
		stop := context.AfterFunc(c.handlersCtx, cancel)
		defer func() {
			stop()
			cancel()
		}()
		msg.SetContext(ctx)
		return h(msg)
	}
}

// observe runs one handler attempt in its CONSUMER span and reports its outcome. A
// failed attempt's span stays open for the retry or dead-letter step to add its event
// and end it (see attemptSpans).
func (c *Client) observe(s subscription) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			spans := attemptSpansFrom(msg.Context())
			outer := msg.Context()
			ctx, span := c.tel.startProcess(s, msg)
			msg.SetContext(ctx)
			start := time.Now()
			produced, err := h(msg)
			elapsed := time.Since(start)
			msg.SetContext(outer)
			kind := EventProcessed
			if err != nil {
				kind = EventFailed
				fail(span, err)
			}
			c.emit(ctx, Event{Kind: kind, Topic: s.topic, Group: s.group, MessageID: msg.UUID,
				CorrelationID: CorrelationID(ctx), Attempt: attemptOf(msg),
				Duration: elapsed, Err: err, Message: msg})
			if err != nil && spans != nil {
				spans.open = span
			} else {
				span.End()
			}
			return produced, err
		}
	}
}

func attemptOf(msg *message.Message) int {
	return metadata.AttemptOf(msg.Metadata.Get(metadata.Attempt))
}
