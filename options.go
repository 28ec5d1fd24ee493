package pubsub

import (
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/pubsubkit/pubsub/transport"
)

// Option configures a Client in Open or New.
type Option func(*options)

type options struct {
	logger       *slog.Logger
	drainTimeout time.Duration
	hooks        []func(Event)
	registry     *transport.Registry
	delivery     Delivery
	// Observability: nil means the OpenTelemetry globals, and no trace log.
	tracerProvider trace.TracerProvider
	meterProvider  metric.MeterProvider
	traceLog       *traceLog
	maxPayload     int // 0: no limit of the client's own
	errs           []error
}

// DefaultDrainTimeout is how long Close and the end of Run wait for in-flight handlers
// unless WithDrainTimeout says otherwise.
const DefaultDrainTimeout = 30 * time.Second

// drainGrace is how long the client waits, after the drain timeout cancelled the
// handlers' contexts, for them to return before it closes the transport anyway.
const drainGrace = time.Second

func newOptions(opts []Option) (options, error) {
	o := options{drainTimeout: DefaultDrainTimeout}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	if err := o.delivery.validate(); err != nil {
		o.errs = append(o.errs, fmt.Errorf("WithDefaultDelivery: %w", err))
	}
	if len(o.errs) > 0 {
		return o, fmt.Errorf("pubsub: %w: %v", ErrInvalidOption, o.errs)
	}
	return o, nil
}

// WithLogger sets the logger for the client's own records (subscriptions starting and
// stopping, drain, dead letters). Records about one message carry its correlation id
// as "cid". The default discards everything.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l == nil {
			o.errs = append(o.errs, fmt.Errorf("WithLogger(nil)"))
			return
		}
		o.logger = l
	}
}

// WithDrainTimeout sets how long a shutdown (Close, or the end of Run) waits for
// in-flight handlers to finish before it cancels their contexts. Messages whose
// handlers did not finish are not acked and will be redelivered. The default is
// DefaultDrainTimeout.
func WithDrainTimeout(d time.Duration) Option {
	return func(o *options) {
		if d <= 0 {
			o.errs = append(o.errs, fmt.Errorf("WithDrainTimeout(%s): must be positive", d))
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
			o.errs = append(o.errs, fmt.Errorf("WithMaxPayload(%d): must be positive", n))
			return
		}
		o.maxPayload = n
	}
}

// WithEventHook adds fn to the functions called for every event in a message's life
// (see Event). Hooks run synchronously on the publishing or consuming goroutine, so
// they must be fast, must be safe for concurrent use, and must not modify the event's
// message.
func WithEventHook(fn func(Event)) Option {
	return func(o *options) {
		if fn == nil {
			o.errs = append(o.errs, fmt.Errorf("WithEventHook(nil)"))
			return
		}
		o.hooks = append(o.hooks, fn)
	}
}

// WithRegistry makes Open consult r before the built-in transports, so that a program
// can open its own transports (any Watermill pub/sub, see transport.FromWatermill) by
// URL scheme.
func WithRegistry(r *transport.Registry) Option {
	return func(o *options) { o.registry = r }
}
