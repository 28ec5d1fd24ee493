package pubsub

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/transport"
)

// instrumentationName names the library to OpenTelemetry.
const instrumentationName = "github.com/pubsubkit/pubsub"

// WithTracerProvider sets where the client's spans go: a "publish <topic>" PRODUCER
// span per publish and a "process <topic>" CONSUMER span per handler attempt, child of
// the producer's span carried in the W3C traceparent header. The default is
// otel.GetTracerProvider(), which does nothing until the application installs an SDK.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) {
		if tp == nil {
			o.errs = append(o.errs, fmt.Errorf("WithTracerProvider(nil)"))
			return
		}
		o.tracerProvider = tp
	}
}

// WithMeterProvider sets where the client's metrics go: messages sent and consumed,
// process duration, retries, dead letters and replays. The default is
// otel.GetMeterProvider().
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *options) {
		if mp == nil {
			o.errs = append(o.errs, fmt.Errorf("WithMeterProvider(nil)"))
			return
		}
		o.meterProvider = mp
	}
}

// telemetry holds the client's tracer and instruments.
type telemetry struct {
	system      string
	tracer      trace.Tracer
	propagator  propagation.TextMapPropagator
	sent        metric.Int64Counter
	consumed    metric.Int64Counter
	duration    metric.Float64Histogram
	retries     metric.Int64Counter
	deadLetters metric.Int64Counter
	replays     metric.Int64Counter
	attrSets    sync.Map // attrsKey → metric.MeasurementOption
}

func newTelemetry(o options, tr transport.Transport) (*telemetry, error) {
	tp, mp := o.tracerProvider, o.meterProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	t := &telemetry{
		system:     "pubsubkit",
		tracer:     tp.Tracer(instrumentationName),
		propagator: propagation.TraceContext{},
	}
	if s, ok := tr.(transport.MessagingSystem); ok {
		t.system = s.MessagingSystem()
	}
	m := mp.Meter(instrumentationName)
	var err error
	counter := func(name, desc string) metric.Int64Counter {
		c, cerr := m.Int64Counter(name, metric.WithDescription(desc), metric.WithUnit("{message}"))
		if cerr != nil && err == nil {
			err = cerr
		}
		return c
	}
	t.sent = counter("messaging.client.sent.messages", "Messages published, by topic and outcome.")
	t.consumed = counter("messaging.client.consumed.messages", "Handler attempts, by topic, group and outcome.")
	t.retries = counter("pubsub.retries", "Failed attempts that will be retried, by topic and group.")
	t.deadLetters = counter("pubsub.dead_letters", "Messages dead-lettered, by topic and group.")
	t.replays = counter("pubsub.replays", "Dead letters replayed, by topic and group.")
	t.duration, err = m.Float64Histogram("messaging.process.duration",
		metric.WithDescription("Handler time per attempt, by topic, group and outcome."), metric.WithUnit("s"))
	if err != nil {
		return nil, fmt.Errorf("pubsub: creating metrics: %w", err)
	}
	return t, nil
}

// record counts the event in the metrics. The attribute sets are cached per topic,
// group and outcome, which bound them, so counting allocates nothing after the first
// message of each.
func (t *telemetry) record(ctx context.Context, e Event) {
	switch e.Kind {
	case EventPublished:
		t.sent.Add(ctx, 1, t.attrs(e.Topic, "", true, e.Err))
	case EventProcessed, EventFailed:
		attrs := t.attrs(e.Topic, e.Group, true, e.Err)
		t.consumed.Add(ctx, 1, attrs)
		t.duration.Record(ctx, e.Duration.Seconds(), attrs)
	case EventRetried:
		t.retries.Add(ctx, 1, t.attrs(e.Topic, e.Group, false, nil))
	case EventDeadLettered:
		t.deadLetters.Add(ctx, 1, t.attrs(e.Topic, e.Group, false, nil))
	case EventReplayed:
		t.replays.Add(ctx, 1, t.attrs(e.Topic, e.Group, false, nil))
	}
}

type attrsKey struct {
	topic, group string
	withOutcome  bool
	failed       bool
}

// attrs returns the measurement option for a topic, a group ("" for none) and, when
// withOutcome, the outcome of err.
func (t *telemetry) attrs(topic, group string, withOutcome bool, err error) metric.MeasurementOption {
	key := attrsKey{topic, group, withOutcome, err != nil}
	if v, ok := t.attrSets.Load(key); ok {
		return v.(metric.MeasurementOption)
	}
	kvs := []attribute.KeyValue{attribute.String("messaging.destination.name", topic)}
	if group != "" {
		kvs = append(kvs, attribute.String("messaging.consumer.group.name", group))
	}
	if withOutcome {
		o := "success"
		if err != nil {
			o = "failure"
		}
		kvs = append(kvs, attribute.String("outcome", o))
	}
	v, _ := t.attrSets.LoadOrStore(key, metric.WithAttributeSet(attribute.NewSet(kvs...)))
	return v.(metric.MeasurementOption)
}

var (
	producerKind = trace.WithSpanKind(trace.SpanKindProducer)
	consumerKind = trace.WithSpanKind(trace.SpanKindConsumer)
)

// startPublish starts the PRODUCER span of a publish and puts its context in the
// message's traceparent header.
func (t *telemetry) startPublish(ctx context.Context, topic string, msg *message.Message) (context.Context, trace.Span) {
	ctx, span := t.tracer.Start(ctx, "publish "+topic, producerKind)
	if span.IsRecording() { // attributes cost allocations; a span nobody records needs none
		span.SetAttributes(append(t.common(topic, msg),
			attribute.String("messaging.operation.type", "send"),
			attribute.String("messaging.operation.name", "publish"))...)
	}
	if span.SpanContext().IsValid() {
		t.propagator.Inject(ctx, propagation.MapCarrier(msg.Metadata))
	}
	return ctx, span
}

// withParent returns msg's context with the producer's span context, extracted from
// its metadata, as the parent of its attempts' spans. A message without one gets an
// empty span context on top: the same root spans, but every later span lookup stops
// there instead of walking the transport's and the router's context layers.
func (t *telemetry) withParent(msg *message.Message) context.Context {
	ctx := msg.Context()
	if msg.Metadata.Get(metadata.TraceParent) != "" {
		ctx = t.propagator.Extract(ctx, propagation.MapCarrier(msg.Metadata))
	}
	if !trace.SpanContextFromContext(ctx).IsValid() {
		ctx = trace.ContextWithSpanContext(ctx, trace.SpanContext{})
	}
	return ctx
}

// startProcess starts the CONSUMER span of one handler attempt, a child of the
// producer's span (see withParent), and returns the context for the handler.
func (t *telemetry) startProcess(s subscription, msg *message.Message) (context.Context, trace.Span) {
	ctx, span := t.tracer.Start(msg.Context(), "process "+s.topic, consumerKind)
	if !span.IsRecording() {
		return ctx, span
	}
	attrs := append(t.common(s.topic, msg),
		attribute.String("messaging.operation.type", "process"),
		attribute.String("messaging.operation.name", "process"),
		attribute.String("messaging.consumer.group.name", s.group),
		attribute.Int("pubsub.attempt", attemptOf(msg)))
	if pos, ok := transport.PositionFrom(msg.Context()); ok {
		attrs = append(attrs,
			attribute.String("messaging.destination.partition.id", strconv.Itoa(int(pos.Partition))),
			attribute.Int64("messaging.kafka.offset", pos.Offset))
	}
	span.SetAttributes(attrs...)
	return ctx, span
}

func (t *telemetry) common(topic string, msg *message.Message) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		attribute.String("messaging.system", t.system),
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

// fail marks span as failed with err.
func fail(span trace.Span, err error) {
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
}

// attemptSpans carries, through one delivery of a message, the span of its current
// attempt while the retry and dead-letter steps decide what follows a failure, so that
// they can add their events to it before it ends.
type attemptSpans struct{ open trace.Span }

type attemptSpansKey struct{}

func attemptSpansFrom(ctx context.Context) *attemptSpans {
	a, _ := ctx.Value(attemptSpansKey{}).(*attemptSpans)
	return a
}

// context returns ctx carrying the open span, so that what is reported about the
// attempt belongs to its trace.
func (a *attemptSpans) context(ctx context.Context) context.Context {
	if a == nil || a.open == nil {
		return ctx
	}
	return trace.ContextWithSpan(ctx, a.open)
}

// end ends the open span, if any, after adding the event name with attrs ("" for
// none).
func (a *attemptSpans) end(name string, attrs ...attribute.KeyValue) {
	if a == nil || a.open == nil {
		return
	}
	if name != "" {
		a.open.AddEvent(name, trace.WithAttributes(attrs...))
	}
	a.open.End()
	a.open = nil
}

// traceDelivery brackets one delivery of a message: it gives the attempts a place to
// leave a failed attempt's span open, and ends whatever is left open when the
// delivery is over (a nack, a shutdown).
func (c *Client) traceDelivery(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		spans := &attemptSpans{}
		msg.SetContext(context.WithValue(c.tel.withParent(msg), attemptSpansKey{}, spans))
		produced, err := h(msg)
		if err != nil {
			spans.end("redelivery", attribute.String("reason", err.Error()))
		}
		spans.end("")
		return produced, err
	}
}

// spanWait is how a retry shows on the failed attempt's span.
func spanWait(retry int, wait time.Duration) []attribute.KeyValue {
	return []attribute.KeyValue{attribute.Int("pubsub.retry", retry), attribute.String("pubsub.wait", wait.String())}
}
