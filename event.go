package pubsub

import (
	"context"

	"go.opentelemetry.io/otel/trace"

	"github.com/pubsubkit/pubsub/middleware"
)

// Event describes one step in a message's life; hooks set with WithEventHook receive
// it, as do the trace log and the metrics. See middleware.Event for its fields.
type Event = middleware.Event

// EventKind names a step in a message's life.
type EventKind = middleware.EventKind

// The events a client reports.
const (
	EventPublished    = middleware.EventPublished
	EventProcessed    = middleware.EventProcessed
	EventFailed       = middleware.EventFailed
	EventRetried      = middleware.EventRetried
	EventDeadLettered = middleware.EventDeadLettered
	EventReplayed     = middleware.EventReplayed
	EventDiscarded    = middleware.EventDiscarded
)

// observers is what hears the events of the client's messages: span events, metrics,
// the trace log, the hooks and the event history, in that order.
type observers struct {
	tracer   *middleware.Tracer // for the publish spans
	system   string
	list     []middleware.Observer
	traceLog *middleware.TraceLog // nil without WithTraceLog
	history  *history             // nil without WithEventHistory
	// internal is true when only span events and metrics observe: nobody reads an
	// event's Message.
	internal bool
}

func newObservers(o options, system string) (observers, error) {
	metrics, err := middleware.NewMetrics(o.meterProvider)
	if err != nil {
		return observers{}, err
	}
	obs := observers{tracer: middleware.NewTracer(o.tracerProvider), system: system,
		list: []middleware.Observer{middleware.SpanEvents, metrics}}
	if o.traceLog != nil {
		obs.traceLog = middleware.NewTraceLog(o.traceLog, o.traceLogOptions)
		obs.list = append(obs.list, obs.traceLog)
	}
	if len(o.hooks) > 0 {
		hooks := o.hooks
		obs.list = append(obs.list, middleware.ObserverFunc(func(_ context.Context, e Event) {
			for _, h := range hooks {
				h(e)
			}
		}))
	}
	if o.history > 0 {
		obs.history = newHistory(o.history)
		obs.list = append(obs.list, obs.history)
	}
	obs.internal = len(obs.list) == 2 // after every observer is in the list
	return obs, nil
}

// leanPublish reports whether a publish from ctx may go out as a transport.Outgoing,
// without a Watermill message: nobody reads the message or its event's ids (no trace
// log, no hooks, no event history), no span is started (tracing off) and ctx carries
// no trace context to write into it.
func (ob observers) leanPublish(ctx context.Context) bool {
	return ob.internal && !ob.tracer.On() && !trace.SpanContextFromContext(ctx).IsValid()
}

// report tells every observer of e, which happened outside a handler (a publish, a
// replay).
func (ob observers) report(ctx context.Context, e Event) { middleware.Notify(ctx, e, ob.list...) }
