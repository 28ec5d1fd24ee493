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
func Tracing(cfg TracingConfig) (message.HandlerMiddleware, error) {
	tp := cfg.Provider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	tracer := tp.Tracer(InstrumentationName)
	name := "process " + cfg.Topic
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			parent := msg.Context()
			ctx := parent
			if msg.Metadata.Get(metadata.TraceParent) != "" {
				ctx = propagator.Extract(ctx, propagation.MapCarrier(msg.Metadata))
			}
			topic, spanName := cfg.Topic, name
			if topic == "" {
				topic = message.SubscribeTopicFromCtx(parent)
				spanName = "process " + topic
			}
			ctx, span := tracer.Start(ctx, spanName, consumerKind)
			if span.IsRecording() { // attributes cost allocations; a span nobody records needs none
				attrs := append(commonAttributes(cfg.System, topic, msg),
					attribute.String("messaging.operation.type", "process"),
					attribute.String("messaging.operation.name", "process"),
					attribute.String("messaging.consumer.group.name", cfg.Group),
					attribute.Int("pubsub.attempt", metadata.AttemptOf(msg.Metadata.Get(metadata.Attempt))))
				if pos, ok := transport.PositionFrom(parent); ok {
					attrs = append(attrs,
						attribute.String("messaging.destination.partition.id", strconv.Itoa(int(pos.Partition))),
						attribute.Int64("messaging.kafka.offset", pos.Offset))
				}
				span.SetAttributes(attrs...)
			}
			if span.SpanContext().IsValid() {
				msg.SetContext(ctx)
			}
			produced, err := h(msg)
			msg.SetContext(parent)
			if err != nil {
				failSpan(span, err)
			}
			span.End()
			return produced, err
		}
	}, nil
}

// StartSend starts the "send <topic>" PRODUCER span of a publish and writes its
// context into msg's metadata (W3C traceparent), so that consumers' spans become its
// children. The caller ends the span when the publish is done.
func StartSend(ctx context.Context, tracer trace.Tracer, system, topic string, msg *message.Message) (context.Context, trace.Span) {
	ctx, span := tracer.Start(ctx, "send "+topic, producerKind)
	if span.IsRecording() {
		span.SetAttributes(append(commonAttributes(system, topic, msg),
			attribute.String("messaging.operation.type", "send"),
			attribute.String("messaging.operation.name", "send"))...)
	}
	if span.SpanContext().IsValid() {
		propagator.Inject(ctx, propagation.MapCarrier(msg.Metadata))
	}
	return ctx, span
}

// EndSend ends a span StartSend started, with status Error when err is not nil.
func EndSend(span trace.Span, err error) {
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
