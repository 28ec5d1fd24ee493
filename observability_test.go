package pubsub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/codec"
	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/internal/testsuite"
	"github.com/pubsubkit/pubsub/pubsubtest"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/kafka"
	"github.com/pubsubkit/pubsub/transport/memory"
)

// lockedBuffer collects trace log lines from concurrent handlers.
type lockedBuffer struct{ testsuite.SyncBuffer }

// lines parses every JSON line written so far.
func (l *lockedBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("trace log line is not JSON: %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

type observed struct {
	h       *pubsubtest.Harness
	spans   *tracetest.SpanRecorder
	metrics *sdkmetric.ManualReader
	log     *lockedBuffer
}

func newObserved(t *testing.T, opts pubsub.TraceLogOptions) observed {
	tr, err := memory.New(memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return newObservedOn(t, tr, opts)
}

// newObservedOn is a running client on tr with an in-memory span recorder, a manual
// metric reader and a JSON trace log.
func newObservedOn(t *testing.T, tr transport.Transport, opts pubsub.TraceLogOptions) observed {
	spans := tracetest.NewSpanRecorder()
	reader := sdkmetric.NewManualReader()
	log := &lockedBuffer{}
	h := pubsubtest.NewOn(t, tr,
		pubsub.WithTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))),
		pubsub.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))),
		pubsub.WithTraceLog(slog.NewJSONHandler(log, nil)), pubsub.WithTraceLogOptions(opts))
	h.Timeout = 30 * time.Second
	return observed{h: h, spans: spans, metrics: reader, log: log}
}

// onKafka runs test on the in-process Kafka cluster.
func onKafka(t *testing.T, test func(t *testing.T, o observed, system string)) {
	cluster := kafkatest.New(t)
	tr, err := kafka.New(context.Background(), kafka.Config{Brokers: cluster.Addrs})
	if err != nil {
		t.Fatal(err)
	}
	test(t, newObservedOn(t, tr, pubsub.TraceLogOptions{}), "kafka")
}

func attr(s sdktrace.ReadOnlySpan, key string) attribute.Value {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

// TestThreeHopChainIsOneTrace: publish → process → publish → process → publish →
// process is one trace, each span the child of the one before, with the messaging
// attributes; every trace log line of the chain has the same cid and trace id.
func TestThreeHopChainIsOneTrace(t *testing.T) {
	t.Run("memory", func(t *testing.T) { threeHops(t, newObserved(t, pubsub.TraceLogOptions{}), "pubsubkit_memory") })
	t.Run("kafka", func(t *testing.T) { onKafka(t, threeHops) })
}

func threeHops(t *testing.T, o observed, system string) {
	c := o.h.Client
	orders := pubsub.NewTopic[string](kafkatest.Topic("orders"))
	invoices := pubsub.NewTopic[string](kafkatest.Topic("invoices"))
	emails := pubsub.NewTopic[string](kafkatest.Topic("emails"))
	must(t, pubsub.Subscribe(c, orders, "billing", func(ctx context.Context, m *pubsub.Message[string]) error {
		return pubsub.Publish(ctx, c, invoices, "invoice for "+m.Payload)
	}))
	must(t, pubsub.Subscribe(c, invoices, "mailer", func(ctx context.Context, m *pubsub.Message[string]) error {
		return pubsub.Publish(ctx, c, emails, "mail "+m.Payload)
	}))
	must(t, pubsub.Subscribe(c, emails, "smtp", func(context.Context, *pubsub.Message[string]) error { return nil }))
	must(t, pubsub.Publish(context.Background(), c, orders, "o-1", pubsub.WithCorrelationID("checkout-1")))
	o.h.WaitHandled(emails.Name(), "smtp", 1)

	var spans []sdktrace.ReadOnlySpan
	for deadline := time.Now().Add(5 * time.Second); len(spans) < 6 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		spans = o.spans.Ended()
	}
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byName[s.Name()] = s
	}
	chain := []struct {
		name string
		kind trace.SpanKind
	}{
		{"send orders", trace.SpanKindProducer}, {"process orders", trace.SpanKindConsumer},
		{"send invoices", trace.SpanKindProducer}, {"process invoices", trace.SpanKindConsumer},
		{"send emails", trace.SpanKindProducer}, {"process emails", trace.SpanKindConsumer},
	}
	for i := range chain {
		chain[i].name = strings.NewReplacer("orders", orders.Name(), "invoices", invoices.Name(), "emails", emails.Name()).Replace(chain[i].name)
	}
	first, ok := byName[chain[0].name]
	if !ok {
		t.Fatalf("no span %q among %d", chain[0].name, len(spans))
	}
	traceID := first.SpanContext().TraceID()
	for i, want := range chain {
		s, ok := byName[want.name]
		if !ok {
			t.Fatalf("no span %q among %d", want.name, len(spans))
		}
		if s.SpanKind() != want.kind {
			t.Errorf("%s: kind %v, want %v", want.name, s.SpanKind(), want.kind)
		}
		if s.SpanContext().TraceID() != traceID {
			t.Errorf("%s is in another trace", want.name)
		}
		if i > 0 && s.Parent().SpanID() != byName[chain[i-1].name].SpanContext().SpanID() {
			t.Errorf("%s is not the child of %s", want.name, chain[i-1].name)
		}
		if got := attr(s, "messaging.message.conversation_id").AsString(); got != "checkout-1" {
			t.Errorf("%s: conversation id %q", want.name, got)
		}
		if attr(s, "messaging.system").AsString() != system || attr(s, "messaging.destination.name").AsString() == "" ||
			attr(s, "messaging.message.id").AsString() == "" {
			t.Errorf("%s lacks messaging attributes: %v", want.name, s.Attributes())
		}
	}
	if got := attr(byName[chain[3].name], "messaging.consumer.group.name").AsString(); got != "mailer" {
		t.Errorf("%s: consumer group %q", chain[3].name, got)
	}
	if got := attr(byName[chain[1].name], "messaging.operation.type").AsString(); got != "process" {
		t.Errorf("%s: operation type %q", chain[1].name, got)
	}
	if system == "kafka" {
		if _, ok := attr(byName[chain[1].name], "messaging.kafka.offset").AsInterface().(int64); !ok {
			t.Errorf("%s lacks the Kafka offset: %v", chain[1].name, byName[chain[1].name].Attributes())
		}
	}

	for _, line := range o.log.lines(t) {
		if line["cid"] != "checkout-1" || line["trace_id"] != traceID.String() {
			t.Errorf("trace log line outside the conversation: %v", line)
		}
	}
}

// TestFailTwiceThenSucceed: the trace log shows published, failed, retried, failed,
// retried, processed with one cid and every required field; the delivery's one span
// shows each failed attempt and retry as events and ends without error; the metrics
// count what happened.
func TestFailTwiceThenSucceed(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		failTwiceThenSucceed(t, newObserved(t, pubsub.TraceLogOptions{}), "pubsubkit_memory")
	})
	t.Run("kafka", func(t *testing.T) { onKafka(t, failTwiceThenSucceed) })
}

func failTwiceThenSucceed(t *testing.T, o observed, _ string) {
	c := o.h.Client
	topic := pubsub.NewTopic[map[string]int](kafkatest.Topic("payments"))
	var calls int
	must(t, pubsub.Subscribe(c, topic, "ledger", func(_ context.Context, m *pubsub.Message[map[string]int]) error {
		calls++
		if calls < 3 {
			return errors.New("ledger busy")
		}
		return nil
	}, pubsub.WithDelivery(pubsub.Delivery{Retry: 3, BackoffDelay: time.Millisecond})))
	must(t, pubsub.Publish(context.Background(), c, topic, map[string]int{"amount": 42}))
	o.h.WaitHandled(topic.Name(), "ledger", 1)

	lines := o.log.lines(t)
	var events []string
	for _, l := range lines {
		events = append(events, l["event"].(string))
		for _, f := range []string{"cid", "topic", "event", "body", "processing", "occurred_at", "processed_at", "host", "message_id"} {
			if _, ok := l[f]; !ok {
				t.Errorf("line %v lacks %q", l, f)
			}
		}
		if l["cid"] != lines[0]["cid"] || l["cid"] == "" {
			t.Errorf("cid changed along the way: %v", l)
		}
		body, _ := l["body"].(map[string]any)
		if body["amount"] != float64(42) {
			t.Errorf("body %v is not the JSON payload", l["body"])
		}
		for _, ts := range []string{"occurred_at", "processed_at"} {
			if _, err := time.Parse(time.RFC3339, l[ts].(string)); err != nil || !strings.Contains(l[ts].(string), ".") {
				t.Errorf("%s %q is not RFC 3339 with milliseconds", ts, l[ts])
			}
		}
	}
	if got := strings.Join(events, ","); got != "published,failed,retried,failed,retried,processed" {
		t.Fatalf("events %s", got)
	}
	if lines[1]["error"] != "ledger busy" || lines[1]["attempt"] != float64(1) || lines[5]["attempt"] != float64(3) || lines[1]["group"] != "ledger" {
		t.Errorf("failed line %v, processed line %v", lines[1], lines[5])
	}
	if lines[5]["processing"].(float64) <= 0 {
		t.Errorf("processed line has no processing time: %v", lines[5])
	}

	// The delivery's span ends just after the processed event: wait for it.
	var spans []sdktrace.ReadOnlySpan
	for deadline := time.Now().Add(5 * time.Second); len(spans) < 1 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		spans = spans[:0]
		for _, s := range o.spans.Ended() {
			if s.Name() == "process "+topic.Name() {
				spans = append(spans, s)
			}
		}
	}
	if len(spans) != 1 {
		t.Fatalf("%d process spans for one delivery retried in place", len(spans))
	}
	var names []string
	for _, e := range spans[0].Events() {
		names = append(names, e.Name)
	}
	if got := strings.Join(names, ","); got != "failed,retry,failed,retry" {
		t.Errorf("span events %s, want failed,retry,failed,retry", got)
	}
	if spans[0].Status().Code == codes.Error {
		t.Error("the span of a delivery that succeeded at last is marked Error")
	}

	var rm metricdata.ResourceMetrics
	must(t, o.metrics.Collect(context.Background(), &rm))
	got := sums(rm)
	want := map[string]int64{
		"messaging.client.sent.messages|success":     1,
		"messaging.client.consumed.messages|failure": 2,
		"messaging.client.consumed.messages|success": 1,
		"pubsub.retries|":                  2,
		"messaging.process.duration|count": 3,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("metric %s = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
}

// sums flattens the collected metrics to "name|outcome" → value, and histogram
// counts to "name|count".
func sums(rm metricdata.ResourceMetrics) map[string]int64 {
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					o, _ := p.Attributes.Value("outcome")
					out[m.Name+"|"+o.AsString()] += p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out[m.Name+"|count"] += int64(p.Count)
				}
			}
		}
	}
	return out
}

// TestTraceLogBody: raw payloads are base64, long bodies are cut, the body can be
// omitted or redacted; dead letters are logged with the error.
func TestTraceLogBody(t *testing.T) {
	o := newObserved(t, pubsub.TraceLogOptions{BodyLimit: 8, Redact: func(topic string, b []byte) []byte {
		return bytes.ReplaceAll(b, []byte("secret"), []byte("******"))
	}})
	c := o.h.Client
	raw := pubsub.NewTopic[[]byte]("blobs", pubsub.WithCodec(codec.Raw))
	text := pubsub.NewTopic[string]("notes")
	must(t, pubsub.Subscribe(c, text, "fails", func(context.Context, *pubsub.Message[string]) error {
		return pubsub.Permanent(errors.New("rejected"))
	}))
	must(t, pubsub.Publish(context.Background(), c, raw, []byte{0, 1, 2}))
	must(t, pubsub.Publish(context.Background(), c, text, "a secret note that is long"))
	o.h.WaitDeadLettered("notes", "fails", 1)
	lines := o.log.lines(t)
	if lines[0]["body"] != "AAEC" {
		t.Errorf("raw body %v, want base64 AAEC", lines[0]["body"])
	}
	if lines[1]["body"] != "\"a *****…" {
		t.Errorf("long JSON body %q, want redacted and cut at 8 bytes", lines[1]["body"])
	}
	var dead map[string]any
	for _, l := range lines {
		if l["event"] == "dead_lettered" {
			dead = l
		}
	}
	if dead == nil || dead["error"] != "rejected" || dead["group"] != "fails" {
		t.Errorf("dead_lettered line %v", dead)
	}
	var deadSpan sdktrace.ReadOnlySpan
	for deadline := time.Now().Add(5 * time.Second); deadSpan == nil && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		for _, s := range o.spans.Ended() {
			if s.Name() == "process notes" {
				deadSpan = s
			}
		}
	}
	if deadSpan == nil || deadSpan.Status().Code != codes.Error || len(deadSpan.Events()) == 0 ||
		deadSpan.Events()[len(deadSpan.Events())-1].Name != "dead_letter" {
		t.Errorf("the dead-lettered delivery's span does not show it: %+v", deadSpan)
	}

	omit := newObserved(t, pubsub.TraceLogOptions{OmitBody: true})
	must(t, pubsub.Publish(context.Background(), omit.h.Client, text, "hidden"))
	if l := omit.log.lines(t)[0]; l["body"] != nil {
		t.Errorf("omitted body logged as %v", l["body"])
	} else if _, present := l["body"]; !present {
		t.Error("an omitted body must still be a field (null)")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
