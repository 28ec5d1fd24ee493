package pubsub

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/ThreeDotsLabs/watermill/message"
)

// EventKind names a step in a message's life.
type EventKind string

// The events a client reports to its hooks.
const (
	// EventPublished: Publish stored the message on its topic.
	EventPublished EventKind = "published"
	// EventProcessed: a handler returned nil.
	EventProcessed EventKind = "processed"
	// EventFailed: a handler attempt returned an error, panicked, or the message could
	// not be decoded.
	EventFailed EventKind = "failed"
	// EventRetried: a failed message will be handled again: after a wait in place
	// (ordered) or from a retry topic (unordered). Attempt is the attempt that failed.
	EventRetried EventKind = "retried"
	// EventDeadLettered: the message was published to its dead-letter topic and acked.
	EventDeadLettered EventKind = "dead_lettered"
	// EventReplayed: a dead letter was sent back to the group that failed it.
	EventReplayed EventKind = "replayed"
)

// Event describes one step in a message's life; hooks set with WithEventHook receive
// it.
type Event struct {
	Kind          EventKind
	Topic         string
	Group         string // "" for EventPublished
	MessageID     string
	CorrelationID string
	Attempt       int           // 1-based; 0 for EventPublished
	Duration      time.Duration // handler time for EventProcessed and EventFailed; the wait for EventRetried
	Err           error         // for EventFailed, EventRetried and EventDeadLettered
	At            time.Time     // when it happened; for EventPublished, when the message was handed to the transport
	TraceID       string        // the trace the event belongs to, when tracing is on
	// Message is the message as published, delivered or dead-lettered. Hooks must not
	// modify it or keep it after they return.
	Message *message.Message
}

// emit reports e, which happened in ctx, to the metrics, the trace log and the hooks.
func (c *Client) emit(ctx context.Context, e Event) {
	e = dated(ctx, e)
	c.logEvent(ctx, e)
	c.notify(ctx, e)
}

// notify reports a dated event to the metrics and the hooks.
func (c *Client) notify(ctx context.Context, e Event) {
	c.tel.record(ctx, e)
	for _, h := range c.opts.hooks {
		h(e)
	}
}

// dated sets e's time, unless set, and trace id.
func dated(ctx context.Context, e Event) Event {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		e.TraceID = sc.TraceID().String()
	}
	return e
}

// logEvent writes e to the trace log, if there is one.
func (c *Client) logEvent(ctx context.Context, e Event) {
	if c.opts.traceLog != nil {
		c.opts.traceLog.write(ctx, e)
	}
}
