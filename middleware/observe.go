package middleware

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/trace"

	"github.com/pubsubkit/pubsub/metadata"
)

// EventKind names a step in a message's life.
type EventKind string

// The steps of a message's life.
const (
	// EventPublished: the message was stored on its topic.
	EventPublished EventKind = "published"
	// EventProcessed: a handler attempt returned nil.
	EventProcessed EventKind = "processed"
	// EventFailed: a handler attempt returned an error, panicked or ran out of time, or
	// the message could not be decoded; with an empty Group, a publish failed.
	EventFailed EventKind = "failed"
	// EventRetried: a failed message will be handled again, after Duration: in place
	// (ordered) or from a retry topic (unordered). Attempt is the attempt that failed.
	EventRetried EventKind = "retried"
	// EventDeadLettered: the message was published to its dead-letter topic.
	EventDeadLettered EventKind = "dead_lettered"
	// EventReplayed: a dead letter was sent back to the group that failed it.
	EventReplayed EventKind = "replayed"
	// EventDiscarded: a dead letter was resolved without being replayed.
	EventDiscarded EventKind = "discarded"
)

// Event describes one step in a message's life.
type Event struct {
	Kind          EventKind
	Topic         string
	Group         string // "" for publishing
	MessageID     string
	CorrelationID string
	Attempt       int           // 1-based; 0 for EventPublished
	Duration      time.Duration // handler time for EventProcessed and EventFailed; the wait for EventRetried; the time to store for EventPublished
	Err           error         // for EventFailed, EventRetried and EventDeadLettered
	Destination   string        // where the message went: the retry topic (unordered) or the dead-letter topic
	At            time.Time     // when it happened
	TraceID       string        // the trace the event belongs to, when tracing is on
	// Message is the message as published, delivered or dead-lettered. Observers must
	// not modify it or keep it after they return. It is nil for a publish that went
	// out without a Watermill message (transport.OutgoingPublisher), which the client
	// does only when no trace log or hook observes it.
	Message *message.Message
}

// Observer hears the events of messages' lives: the trace log, metrics, span events
// and the client's hooks are observers. Observe runs synchronously on the goroutine
// handling (or publishing) the message, so it must be quick and safe for concurrent
// use.
type Observer interface {
	Observe(ctx context.Context, e Event)
}

// ObserverFunc makes a function an Observer.
type ObserverFunc func(ctx context.Context, e Event)

// Observe calls f.
func (f ObserverFunc) Observe(ctx context.Context, e Event) { f(ctx, e) }

// ObserveConfig configures Observe.
type ObserveConfig struct {
	// Topic and Group fill the events' fields; on a plain Watermill router Topic
	// defaults to the handler's subscribe topic.
	Topic, Group string
	// Observers hear every event, in order.
	Observers []Observer
}

// Observe makes its observers hear the events of every message it handles. The stages
// inside it report what they do as it happens (Retry and RetryTopic each attempt and
// each retry, DeadLetter each dead letter, with Report); when none reports an
// attempt, Observe reports the outcome of the call as one attempt, so that it also
// works alone on a plain Watermill router.
func Observe(cfg ObserveConfig) (message.HandlerMiddleware, error) {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			parent := msg.Context()
			o := &observation{Context: parent, cfg: &cfg}
			o.outer, _ = parent.Value(observationKey{}).(*observation)
			msg.SetContext(o)
			start := time.Now()
			produced, err := h(msg)
			msg.SetContext(parent)
			if !o.attempted {
				o.reportCall(parent, msg, start, err)
			}
			return produced, err
		}
	}, nil
}

type observationKey struct{}

// observation is the context of a message inside Observe: it carries the observers to
// the stages that report.
type observation struct {
	context.Context
	cfg       *ObserveConfig
	outer     *observation // an Observe stage further out
	attempted bool         // a stage inside reported an attempt
}

func (o *observation) Value(key any) any {
	if key == (observationKey{}) {
		return o
	}
	return o.Context.Value(key)
}

// Report tells the observers of every Observe stage around ctx of e. Stages call it
// for what they do (a retry, a dead letter); e's Topic, Group, MessageID,
// CorrelationID, At and TraceID are filled in when empty.
func Report(ctx context.Context, e Event) {
	if o, ok := ctx.Value(observationKey{}).(*observation); ok {
		o.report(ctx, e)
	}
}

// reportCall reports the call of the stages inside as one attempt.
func (o *observation) reportCall(ctx context.Context, msg *message.Message, start time.Time, err error) {
	kind := EventProcessed
	if err != nil {
		kind = EventFailed
	}
	o.report(ctx, Event{Kind: kind, Attempt: metadata.AttemptOf(msg.Metadata.Get(metadata.Attempt)),
		Duration: time.Since(start), Err: err, Message: msg})
}

func (o *observation) report(ctx context.Context, e Event) {
	if e.Kind == EventProcessed || e.Kind == EventFailed {
		o.attempted = true
	}
	if e.Topic == "" && o.cfg.Topic == "" && e.Message != nil {
		e.Topic = message.SubscribeTopicFromCtx(e.Message.Context())
	}
	e = filled(ctx, e)
	for ; o != nil; o = o.outer {
		oe := e
		if oe.Topic == "" {
			oe.Topic = o.cfg.Topic
		}
		if oe.Group == "" {
			oe.Group = o.cfg.Group
		}
		for _, ob := range o.cfg.Observers {
			ob.Observe(ctx, oe)
		}
		if o.outer != nil {
			o.outer.attempted = o.outer.attempted || o.attempted
		}
	}
}

// Notify tells observers of e directly, outside any Observe stage (a publish, a
// replay), with the fields Report fills.
func Notify(ctx context.Context, e Event, observers ...Observer) {
	e = filled(ctx, e)
	for _, ob := range observers {
		ob.Observe(ctx, e)
	}
}

// filled is e with MessageID, CorrelationID, At and TraceID set when empty.
func filled(ctx context.Context, e Event) Event {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	if e.Message != nil {
		if e.MessageID == "" {
			e.MessageID = e.Message.UUID
		}
		if e.CorrelationID == "" {
			e.CorrelationID = e.Message.Metadata.Get(metadata.CorrelationID)
		}
	}
	if e.TraceID == "" {
		if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
			e.TraceID = sc.TraceID().String()
		}
	}
	return e
}
