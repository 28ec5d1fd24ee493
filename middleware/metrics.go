package middleware

import (
	"context"
	"fmt"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Metrics is the Observer that counts events in OpenTelemetry metrics, named after the
// messaging semantic conventions where they have a name:
//
//   - messaging.client.sent.messages: messages published, by topic and outcome;
//   - messaging.client.operation.duration: seconds a publish took to be stored, by
//     topic and outcome;
//   - messaging.client.consumed.messages: handler attempts, by topic, group and
//     outcome, and messaging.process.duration, their seconds;
//   - pubsub.retries, pubsub.dead_letters, pubsub.replays, pubsub.discards: by topic
//     and group.
//
// Attributes are bounded (topic, group, outcome; never a message id), and their sets
// are cached, so counting allocates nothing after the first event of each. It is safe
// for concurrent use.
type Metrics struct {
	sent        metric.Int64Counter
	sendTime    metric.Float64Histogram
	consumed    metric.Int64Counter
	processTime metric.Float64Histogram
	retries     metric.Int64Counter
	deadLetters metric.Int64Counter
	replays     metric.Int64Counter
	discards    metric.Int64Counter
	sets        sync.Map // attrsKey → *attrOptions
}

// NewMetrics makes the instruments from mp; nil means otel.GetMeterProvider().
func NewMetrics(mp metric.MeterProvider) (*Metrics, error) {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(InstrumentationName)
	var errs []error
	counter := func(name, desc string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithDescription(desc), metric.WithUnit("{message}"))
		errs = append(errs, err)
		return c
	}
	seconds := func(name, desc string) metric.Float64Histogram {
		h, err := m.Float64Histogram(name, metric.WithDescription(desc), metric.WithUnit("s"))
		errs = append(errs, err)
		return h
	}
	mt := &Metrics{
		sent:        counter("messaging.client.sent.messages", "Messages published, by topic and outcome."),
		sendTime:    seconds("messaging.client.operation.duration", "Time for a publish to be stored, by topic and outcome."),
		consumed:    counter("messaging.client.consumed.messages", "Handler attempts, by topic, group and outcome."),
		processTime: seconds("messaging.process.duration", "Handler time per attempt, by topic, group and outcome."),
		retries:     counter("pubsub.retries", "Failed attempts that will be retried, by topic and group."),
		deadLetters: counter("pubsub.dead_letters", "Messages dead-lettered, by topic and group."),
		replays:     counter("pubsub.replays", "Dead letters replayed, by topic and group."),
		discards:    counter("pubsub.discards", "Dead letters discarded, by topic and group."),
	}
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("middleware: creating metrics: %w", err)
		}
	}
	return mt, nil
}

// Observe counts e.
func (m *Metrics) Observe(ctx context.Context, e Event) {
	switch e.Kind {
	case EventPublished:
		a := m.attrs(e.Topic, "", true, false)
		m.sent.Add(ctx, 1, a.add...)
		m.sendTime.Record(ctx, e.Duration.Seconds(), a.record...)
	case EventFailed:
		if e.Group == "" { // a publish
			a := m.attrs(e.Topic, "", true, true)
			m.sent.Add(ctx, 1, a.add...)
			m.sendTime.Record(ctx, e.Duration.Seconds(), a.record...)
			return
		}
		a := m.attrs(e.Topic, e.Group, true, true)
		m.consumed.Add(ctx, 1, a.add...)
		m.processTime.Record(ctx, e.Duration.Seconds(), a.record...)
	case EventProcessed:
		a := m.attrs(e.Topic, e.Group, true, false)
		m.consumed.Add(ctx, 1, a.add...)
		m.processTime.Record(ctx, e.Duration.Seconds(), a.record...)
	case EventRetried:
		m.retries.Add(ctx, 1, m.attrs(e.Topic, e.Group, false, false).add...)
	case EventDeadLettered:
		m.deadLetters.Add(ctx, 1, m.attrs(e.Topic, e.Group, false, false).add...)
	case EventReplayed:
		m.replays.Add(ctx, 1, m.attrs(e.Topic, e.Group, false, false).add...)
	case EventDiscarded:
		m.discards.Add(ctx, 1, m.attrs(e.Topic, e.Group, false, false).add...)
	}
}

// attrOptions are one attribute set as the options of Add and Record, made once:
// passing a slice made anew to a variadic parameter would allocate on every call.
type attrOptions struct {
	add    []metric.AddOption
	record []metric.RecordOption
}

type attrsKey struct {
	topic, group        string
	withOutcome, failed bool
}

// attrs returns the measurement option for a topic, a group ("" for none) and, when
// withOutcome, the outcome.
func (m *Metrics) attrs(topic, group string, withOutcome, failed bool) *attrOptions {
	key := attrsKey{topic, group, withOutcome, failed}
	if v, ok := m.sets.Load(key); ok {
		return v.(*attrOptions)
	}
	kvs := []attribute.KeyValue{attribute.String("messaging.destination.name", topic)}
	if group != "" {
		kvs = append(kvs, attribute.String("messaging.consumer.group.name", group))
	}
	if withOutcome {
		outcome := "success"
		if failed {
			outcome = "failure"
		}
		kvs = append(kvs, attribute.String("outcome", outcome))
	}
	opt := metric.WithAttributeSet(attribute.NewSet(kvs...))
	v, _ := m.sets.LoadOrStore(key, &attrOptions{add: []metric.AddOption{opt}, record: []metric.RecordOption{opt}})
	return v.(*attrOptions)
}
