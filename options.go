package pubsub

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/pubsubkit/pubsub/middleware"
	"github.com/pubsubkit/pubsub/transport"
)

// Option configures a Client in Open or New. Every option is checked when the client
// is made: an error wraps ErrInvalidOption and names each bad option.
type Option func(*options)

type options struct {
	logger       *slog.Logger
	drainTimeout time.Duration
	hooks        []func(Event)
	registry     *transport.Registry
	delivery     Delivery
	maxPayload   int // 0: no limit of the client's own
	stallAfter   time.Duration
	history      int // events kept for History; 0: none
	// The queue of PublishAsync for transports without one of their own.
	publishQueue      int
	publishQueueBytes int
	// Observability: nil providers mean the OpenTelemetry globals; no trace log
	// without traceLog.
	tracerProvider  trace.TracerProvider
	meterProvider   metric.MeterProvider
	traceLog        slog.Handler
	traceLogOptions TraceLogOptions
	errs            []error
}

// Defaults of the client's options.
const (
	// DefaultDrainTimeout is how long Close and the end of Run wait for in-flight
	// handlers unless WithDrainTimeout says otherwise.
	DefaultDrainTimeout = 30 * time.Second
	// DefaultPublishQueue and DefaultPublishQueueBytes bound the messages PublishAsync
	// queues on a transport without a queue of its own (WithPublishQueue).
	DefaultPublishQueue      = 10_000
	DefaultPublishQueueBytes = 64 << 20
)

func newOptions(opts []Option) (options, error) {
	o := options{drainTimeout: DefaultDrainTimeout, publishQueue: DefaultPublishQueue, publishQueueBytes: DefaultPublishQueueBytes,
		stallAfter: DefaultStallAfter}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	if o.registry == nil {
		o.registry = Transports()
	}
	if err := o.delivery.validate(); err != nil {
		o.errs = append(o.errs, fmt.Errorf("WithDefaultDelivery: %w", err))
	}
	if o.traceLogOptions.BodyLimit < 0 {
		o.bad("TraceLogOptions.BodyLimit %d is negative", o.traceLogOptions.BodyLimit)
	}
	if len(o.errs) > 0 {
		return o, fmt.Errorf("pubsub: %w: %w", ErrInvalidOption, errors.Join(o.errs...))
	}
	return o, nil
}

func (o *options) bad(format string, args ...any) {
	o.errs = append(o.errs, fmt.Errorf(format, args...))
}

// WithLogger sets the logger for the client's own records (subscriptions starting and
// stopping, drain, dead letters) and its transport's. Records about one message carry
// its correlation id as "cid". The default discards everything.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l == nil {
			o.bad("WithLogger(nil)")
			return
		}
		o.logger = l
	}
}

// WithDrainTimeout sets how long a shutdown (Close, or the end of Run) waits for
// in-flight handlers to finish before it cancels their contexts, and how long Close
// then waits for queued messages to be stored. Messages whose handlers did not finish
// are not acked and will be redelivered. The default is DefaultDrainTimeout.
func WithDrainTimeout(d time.Duration) Option {
	return func(o *options) {
		if d <= 0 {
			o.bad("WithDrainTimeout(%s): must be positive", d)
			return
		}
		o.drainTimeout = d
	}
}

// WithMaxPayload limits payloads to n bytes, as encoded by the topic's codec.
// Publish refuses a larger payload with an error wrapping ErrPayloadTooLarge, and a
// consumer dead-letters a larger message it receives (written by another producer)
// as a permanent failure before decoding it, so that one oversized message neither
// stalls its partition nor reaches a handler. Without it, only the transport's own
// limit applies (Kafka: max_message_bytes).
func WithMaxPayload(n int) Option {
	return func(o *options) {
		if n <= 0 {
			o.bad("WithMaxPayload(%d): must be positive", n)
			return
		}
		o.maxPayload = n
	}
}

// WithPublishQueue bounds the messages PublishAsync and PublishBatch may have queued
// and not yet stored, in number and in payload bytes, on a transport that has no queue
// of its own (Watermill pub/subs plugged in with watermilladapter.New); PublishAsync
// waits while the queue is full. Kafka's queue is set by its publish_queue and
// publish_queue_bytes parameters, and the memory transport stores at once. The
// defaults are DefaultPublishQueue and DefaultPublishQueueBytes.
func WithPublishQueue(messages, bytes int) Option {
	return func(o *options) {
		if messages < 1 || bytes < 1 {
			o.bad("WithPublishQueue(%d, %d): both must be positive", messages, bytes)
			return
		}
		o.publishQueue, o.publishQueueBytes = messages, bytes
	}
}

// WithEventHook adds fn to the functions called for every event in a message's life
// (see Event). Hooks run synchronously on the publishing or consuming goroutine, so
// they must be fast, must be safe for concurrent use, and must not modify the event's
// message.
func WithEventHook(fn func(Event)) Option {
	return func(o *options) {
		if fn == nil {
			o.bad("WithEventHook(nil)")
			return
		}
		o.hooks = append(o.hooks, fn)
	}
}

// WithRegistry makes Open use r to open the URL's scheme instead of Transports().
// Start from Transports() to keep the built-in schemes:
//
//	r := pubsub.Transports()
//	r.Register("nats", openNATS) // any Watermill pub/sub, through watermilladapter.New
//	c, err := pubsub.Open(ctx, "nats://...", pubsub.WithRegistry(r))
func WithRegistry(r *transport.Registry) Option {
	return func(o *options) {
		if r == nil {
			o.bad("WithRegistry(nil)")
			return
		}
		o.registry = r
	}
}

// WithDefaultDelivery sets the delivery policy of the subscriptions that do not give
// their own with WithDelivery. Without it they get the zero Delivery.
func WithDefaultDelivery(d Delivery) Option {
	return func(o *options) { o.delivery = d }
}

// WithTracerProvider sets where the client's spans go: a "send <topic>" PRODUCER span
// per publish and a "process <topic>" CONSUMER span per delivery, child of the
// producer's span carried in the W3C traceparent header. The default is
// otel.GetTracerProvider(), which does nothing until the application installs an SDK.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) {
		if tp == nil {
			o.bad("WithTracerProvider(nil)")
			return
		}
		o.tracerProvider = tp
	}
}

// WithMeterProvider sets where the client's metrics go (see middleware.Metrics for
// their names). The default is otel.GetMeterProvider().
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *options) {
		if mp == nil {
			o.bad("WithMeterProvider(nil)")
			return
		}
		o.meterProvider = mp
	}
}

// WithTraceLog writes one line to h for every event in a message's life: published,
// processed, failed, retried, dead_lettered, replayed, discarded. With
// slog.NewJSONHandler each line is a JSON object with the fields cid, topic, event,
// body, processing, occurred_at, processed_at and host, and message_id, group,
// attempt, error and trace_id where they apply (middleware.TraceLog says what each
// holds). WithTraceLogOptions cuts, redacts or omits the body.
func WithTraceLog(h slog.Handler) Option {
	return func(o *options) {
		if h == nil {
			o.bad("WithTraceLog(nil)")
			return
		}
		o.traceLog = h
	}
}

// TraceLogOptions configures the trace log: body size, redaction, host name. Its zero
// value is the default.
type TraceLogOptions = middleware.TraceLogOptions

// WithTraceLogOptions sets how the trace log of WithTraceLog writes bodies.
func WithTraceLogOptions(t TraceLogOptions) Option {
	return func(o *options) { o.traceLogOptions = t }
}
