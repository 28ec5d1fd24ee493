package middleware

import (
	"context"
	"sync/atomic"
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
	// does only when no trace log, hook or event history observes it.
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

// ObserveConfig configures Observe and NewObservation.
type ObserveConfig struct {
	// Topic and Group fill the events' fields; on a plain Watermill router Topic
	// defaults to the handler's subscribe topic.
	Topic, Group string
	// Observers hear every event, in order.
	Observers []Observer
}

// Reporter is where a stage reports the events of the messages it handles: the
// Observation of the Observe stage around it, given to the stage when the chain is
// built (the Events field of RetryConfig, RetryTopicConfig, DeadLetterConfig and
// WaitDueConfig). Events flow down: a stage calls the Reporter it was given and
// looks for nothing in the message's context. Report must be safe for concurrent use.
type Reporter interface {
	Report(ctx context.Context, e Event)
}

// Observation is an Observe stage: Middleware is the stage, and Report tells its
// observers of an event. Give it to the stages inside it as their Events, so that
// their observers hear every event as it happens: Retry and RetryTopic each attempt
// and each retry, DeadLetter each dead letter, WaitDue a wait cut short. Once it is
// the Events of a Retry or RetryTopic, the attempts are theirs to report; until then
// Middleware reports each call of the stages inside as one attempt, so that Observe
// also works alone on a plain Watermill router. An Observation is safe for concurrent
// use.
type Observation struct {
	cfg ObserveConfig
	// retries is set once a Retry or RetryTopic reports its attempts here.
	retries atomic.Bool
}

// NewObservation returns the Observe stage of cfg.
func NewObservation(cfg ObserveConfig) *Observation {
	return &Observation{cfg: cfg}
}

// Observe returns the Middleware of NewObservation(cfg): alone on a router, it reports
// each call of the stages inside as one attempt. To hear the events of stages inside
// it, make it with NewObservation and give it to them.
func Observe(cfg ObserveConfig) (message.HandlerMiddleware, error) {
	return NewObservation(cfg).Middleware, nil
}

// Middleware is the stage: it passes each message on, and, while no Retry or
// RetryTopic reports attempts to o, reports the call as one attempt (EventProcessed or
// EventFailed, with the time it took).
func (o *Observation) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		if o.retries.Load() {
			return h(msg)
		}
		start := time.Now()
		produced, err := h(msg)
		o.reportCall(msg, start, err)
		return produced, err
	}
}

// reportCall reports the call of the stages inside as one attempt.
func (o *Observation) reportCall(msg *message.Message, start time.Time, err error) {
	kind := EventProcessed
	if err != nil {
		kind = EventFailed
	}
	o.Report(msg.Context(), Event{Kind: kind, Attempt: metadata.AttemptOf(msg.Metadata.Get(metadata.Attempt)),
		Duration: time.Since(start), Err: err, Message: msg})
}

// Report tells o's observers of e, with its Topic and Group from the ObserveConfig
// when empty, and MessageID, CorrelationID, At and TraceID filled as Notify fills them.
func (o *Observation) Report(ctx context.Context, e Event) {
	if e.Topic == "" {
		e.Topic = o.cfg.Topic
		if e.Topic == "" && e.Message != nil {
			e.Topic = message.SubscribeTopicFromCtx(e.Message.Context())
		}
	}
	if e.Group == "" {
		e.Group = o.cfg.Group
	}
	Notify(ctx, e, o.cfg.Observers...)
}

// reportsAttempts tells r, when it is an Observation, that a stage reports the
// attempts to it (Retry, RetryTopic).
func reportsAttempts(r Reporter) {
	if o, ok := r.(*Observation); ok {
		o.retries.Store(true)
	}
}

// leavesAttempts reports whether the attempts of messages reported to r are reported
// by a Retry or RetryTopic (not by an Observation's Middleware).
func leavesAttempts(r Reporter) bool {
	o, ok := r.(*Observation)
	return !ok || o.retries.Load()
}

// report tells r of e, when there is an r.
func report(r Reporter, ctx context.Context, e Event) {
	if r != nil {
		r.Report(ctx, e)
	}
}

// Notify tells observers of e directly, outside any Observe stage (a publish, a
// replay), with MessageID and CorrelationID (from e.Message), At (now) and TraceID
// (from ctx's span) filled in when empty. Observation.Report calls it.
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
