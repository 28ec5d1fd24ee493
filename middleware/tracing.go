package middleware

import (
	"context"
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/transport"
)

// InstrumentationName names the library to OpenTelemetry: its tracer and meter.
const InstrumentationName = "github.com/pubsubkit/pubsub"

// propagator reads and writes the W3C trace context headers.
var propagator = propagation.TraceContext{}

var (
	producerKind = trace.WithSpanKind(trace.SpanKindProducer)
	consumerKind = trace.WithSpanKind(trace.SpanKindConsumer)
)

// TracingConfig configures Tracing.
type TracingConfig struct {
	// Provider makes the tracer; nil means otel.GetTracerProvider().
	Provider trace.TracerProvider
	// System is the messaging.system attribute, such as "kafka".
	System string
	// Topic and Group name the subscription in the span's name and attributes.
	Topic, Group string
}

// Tracing runs each delivery of a message in a "process <topic>" CONSUMER span, child
// of the producer's span whose context the message carries in its W3C traceparent
// header (see StartSend), and ends it when the delivery ends: with status Error when
// the delivery failed. Attributes follow the OpenTelemetry messaging conventions
// (messaging.system, messaging.destination.name, messaging.consumer.group.name,
// messaging.message.id, messaging.message.conversation_id, and the partition, offset
// and key on Kafka). A handler's publishes become children of the span through its
// context. Attempts that fail and are retried in place, retries and dead letters show
// as events on the span, through SpanEvents.
//
// With no Provider and no OpenTelemetry SDK installed as the global provider, no span
// is started (at no cost); a message's trace context is still passed on to what its
// handler publishes.
func Tracing(cfg TracingConfig) (message.HandlerMiddleware, error) {
	t := &consumerTracing{cfg: cfg, tracer: NewTracer(cfg.Provider), name: "process " + cfg.Topic}
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			parent := msg.Context()
			ctx, span := t.start(parent, msg)
			if ctx != parent {
				msg.SetContext(ctx)
			}
			produced, err := h(msg)
			msg.SetContext(parent)
			if span != nil {
				if err != nil {
					failSpan(span, err)
				}
				span.End()
			}
			return produced, err
		}
	}, nil
}

// Tracer starts the library's spans: from the provider it was made with, or from the
// OpenTelemetry global one. While the global provider is the placeholder that
// OpenTelemetry has before an application installs an SDK, Tracer starts no span at
// all, so that tracing that is off costs nothing; once an SDK is installed, spans
// start. It is safe for concurrent use.
type Tracer struct {
	provider    trace.TracerProvider // the one given, or nil for the global
	placeholder trace.TracerProvider // the global provider when the Tracer was made
	tracer      trace.Tracer
}

// NewTracer returns a Tracer on tp; nil means the OpenTelemetry global provider.
func NewTracer(tp trace.TracerProvider) *Tracer {
	t := &Tracer{provider: tp}
	if tp == nil {
		t.placeholder = otel.GetTracerProvider()
		tp = t.placeholder
	}
	t.tracer = tp.Tracer(InstrumentationName)
	return t
}

// on reports whether spans start: a provider was given, or the global one changed
// since (an SDK was installed; the placeholder delegates to it).
// On reports whether t starts spans: a TracerProvider was given, or the global one is
// set.
func (t *Tracer) On() bool { return t.on() }

func (t *Tracer) on() bool {
	return t.provider != nil || otel.GetTracerProvider() != t.placeholder
}

// consumerTracing is what a Tracing stage starts spans with. Its start is a function
// of its own, so that the stage's frame on the handler's stack stays small: every
// stage's frame is on that stack, which starts small for each message.
type consumerTracing struct {
	cfg    TracingConfig
	tracer *Tracer
	name   string
}

// start returns the context for the stages inside, and the delivery's span (nil when
// tracing is off).
func (t *consumerTracing) start(parent context.Context, msg *message.Message) (context.Context, trace.Span) {
	ResolveCorrelationID(msg) // the span, the trace log and the hooks see one id, whatever header brought it
	ctx := ExtractTrace(parent, msg)
	if !t.tracer.on() {
		return ctx, nil // the producer's context, if any, still reaches the handler's publishes
	}
	topic, name := t.cfg.Topic, t.name
	if topic == "" {
		topic = message.SubscribeTopicFromCtx(parent)
		name = "process " + topic
	}
	ctx, span := t.tracer.tracer.Start(ctx, name, consumerKind)
	if span.IsRecording() { // attributes cost allocations; a span nobody records needs none
		attrs := append(commonAttributes(t.cfg.System, topic, msg),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.operation.name", "process"),
			attribute.String("messaging.consumer.group.name", t.cfg.Group),
			attribute.Int("pubsub.attempt", metadata.AttemptOf(msg.Metadata.Get(metadata.Attempt))))
		if pos, ok := transport.PositionFrom(parent); ok {
			attrs = append(attrs,
				attribute.String("messaging.destination.partition.id", strconv.Itoa(int(pos.Partition))),
				attribute.Int64("messaging.kafka.offset", pos.Offset))
		}
		span.SetAttributes(attrs...)
	}
	return ctx, span
}

// StartSend starts the "send <topic>" PRODUCER span of a publish and writes its
// context into msg's metadata (W3C traceparent), so that consumers' spans become its
// children. The caller ends the span with EndSend when the publish is done. When
// tracing is off it starts no span, but still writes the trace context ctx carries (a
// handler publishing passes on the trace of the message it handles).
func StartSend(ctx context.Context, t *Tracer, system, topic string, msg *message.Message) (context.Context, trace.Span) {
	if !t.on() {
		InjectTrace(ctx, msg)
		return ctx, nil
	}
	ctx, span := t.tracer.Start(ctx, "send "+topic, producerKind)
	if span.IsRecording() {
		span.SetAttributes(append(commonAttributes(system, topic, msg),
			attribute.String("messaging.operation.type", "send"),
			attribute.String("messaging.operation.name", "send"))...)
	}
	InjectTrace(ctx, msg)
	return ctx, span
}

// InjectTrace writes the W3C trace context of ctx's span, if it has one, into msg's
// metadata: traceparent and tracestate, and, when msg is a binary-mode CloudEvent
// (it has ce_specversion), also ce_traceparent and ce_tracestate, the CloudEvents
// distributed-tracing extension.
func InjectTrace(ctx context.Context, msg *message.Message) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	md := msg.Metadata
	propagator.Inject(ctx, propagation.MapCarrier(md))
	if md[metadata.CloudEventsSpec] != "" {
		md[metadata.CloudEventsTraceParent] = md[metadata.TraceParent]
		if ts := md[metadata.TraceState]; ts != "" {
			md[metadata.CloudEventsTraceState] = ts
		} else {
			delete(md, metadata.CloudEventsTraceState)
		}
	}
}

// ExtractTrace returns ctx with the trace context msg carries as its remote parent:
// its W3C traceparent and tracestate headers (from InjectTrace or a producer's
// span); without a traceparent header, the CloudEvents distributed-tracing extension
// (ce_traceparent and ce_tracestate in binary mode, traceparent and tracestate in a
// structured event's envelope). It returns ctx itself when msg carries none.
func ExtractTrace(ctx context.Context, msg *message.Message) context.Context {
	md := msg.Metadata
	if md[metadata.TraceParent] != "" {
		return propagator.Extract(ctx, propagation.MapCarrier(md))
	}
	// The carrier is made only for a message that has a trace context: most have none
	// when tracing is off, and it would be an allocation for each.
	if tp := md[metadata.CloudEventsTraceParent]; tp != "" {
		return propagator.Extract(ctx, propagation.MapCarrier{metadata.TraceParent: tp, metadata.TraceState: md[metadata.CloudEventsTraceState]})
	}
	if e, ok := structuredEnvelope(msg); ok && e.TraceParent != "" {
		return propagator.Extract(ctx, propagation.MapCarrier{metadata.TraceParent: e.TraceParent, metadata.TraceState: e.TraceState})
	}
	return ctx
}

// EndSend ends a span StartSend started (nil: none), with status Error when err is
// not nil.
func EndSend(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		failSpan(span, err)
	}
	span.End()
}

func commonAttributes(system, topic string, msg *message.Message) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		attribute.String("messaging.system", system),
		attribute.String("messaging.destination.name", topic),
		attribute.String("messaging.message.id", msg.UUID),
		attribute.String("messaging.message.conversation_id", msg.Metadata.Get(metadata.CorrelationID)),
		attribute.Int("messaging.message.body.size", len(msg.Payload)),
	}
	if key := msg.Metadata.Get(metadata.Key); key != "" {
		attrs = append(attrs, attribute.String("messaging.kafka.message.key", key))
	}
	return attrs
}

func failSpan(span trace.Span, err error) {
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
}

// SpanEvents is the Observer that adds the events of a delivery to its span (the
// span in the event's context, from Tracing): a failed attempt, a retry with its
// wait, a dead letter with its topic (which also marks the span Error).
var SpanEvents Observer = ObserverFunc(func(ctx context.Context, e Event) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	switch e.Kind {
	case EventFailed:
		if e.Group == "" {
			return // a publish: its own span says so
		}
		span.AddEvent("failed", trace.WithAttributes(attribute.Int("pubsub.attempt", e.Attempt),
			attribute.String("error", e.Err.Error())))
	case EventRetried:
		span.AddEvent("retry", trace.WithAttributes(attribute.Int("pubsub.retry", e.Attempt),
			attribute.String("pubsub.wait", e.Duration.String())))
	case EventDeadLettered:
		span.AddEvent("dead_letter", trace.WithAttributes(attribute.Int("pubsub.attempts", e.Attempt),
			attribute.String("pubsub.dead_letter_topic", e.Destination)))
		if e.Err != nil {
			span.SetStatus(codes.Error, e.Err.Error()) // handled for good, but not well
		}
	}
})

// StartBatch starts the CONSUMER span of one call of a batch handler, "process
// <topic>", as the messaging conventions describe a batch receive: a new trace of its
// own, linked to the producer span of each message (links, from ProducerLink), with
// messaging.batch.message_count n. It returns ctx with the span; the span is nil when
// tracing is off.
func StartBatch(ctx context.Context, t *Tracer, system, topic, group string, links []trace.Link, n int) (context.Context, trace.Span) {
	if !t.on() {
		return ctx, nil
	}
	ctx, span := t.tracer.Start(ctx, "process "+topic, consumerKind, trace.WithNewRoot(), trace.WithLinks(links...))
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String("messaging.system", system),
			attribute.String("messaging.destination.name", topic),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.operation.name", "process"),
			attribute.String("messaging.consumer.group.name", group),
			attribute.Int("messaging.batch.message_count", n))
	}
	return ctx, span
}

// ProducerLink returns a link to the producer span whose context msg carries (an
// empty link when it carries none).
func ProducerLink(msg *message.Message) trace.Link {
	return trace.Link{SpanContext: trace.SpanContextFromContext(ExtractTrace(context.Background(), msg))}
}

// EndBatch ends a span StartBatch started (nil: none), with status Error when err is
// not nil. failed gives, for a batch whose messages failed alone (err made of
// pubsub.Failed errors), each failed message's id and reason: each becomes a
// "message_failed" event on the span (messaging.message.id, exception.message), so
// the batch span tells which of its messages failed and why.
func EndBatch(span trace.Span, err error, failed func(yield func(id string, reason error) bool)) {
	if span == nil {
		return
	}
	if err != nil {
		if failed != nil && span.IsRecording() {
			for id, reason := range failed {
				span.AddEvent("message_failed", trace.WithAttributes(attribute.String("messaging.message.id", id),
					attribute.String("exception.message", reason.Error())))
			}
		}
		failSpan(span, err)
	}
	span.End()
}
