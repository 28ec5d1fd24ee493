package middleware_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/pubsubkit/pubsub/internal/testsuite"
	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/middleware"
	"github.com/pubsubkit/pubsub/transport/memory"
)

// TestObservabilityOnPlainRouter: Tracing, Observe with the TraceLog, Metrics and
// SpanEvents, on a Watermill router that knows nothing of pubsubkit, with Retry
// inside reporting to the Observation: a message that fails once is one CONSUMER span, child of the producer's span,
// with the failed attempt and the retry as events; the trace log has failed, retried,
// processed; the metrics count two attempts and a retry. A message handled without
// any stage that reports (Observe alone) is still logged and counted as one attempt.
func TestObservabilityOnPlainRouter(t *testing.T) {
	tr, err := memory.New(memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	reader := sdkmetric.NewManualReader()
	metrics, err := middleware.NewMetrics(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	if err != nil {
		t.Fatal(err)
	}
	var log testsuite.SyncBuffer
	traceLog := middleware.NewTraceLog(slog.NewJSONHandler(&log, nil), middleware.TraceLogOptions{Host: "test"})

	tracing := must(middleware.Tracing(middleware.TracingConfig{Provider: tp, System: "test", Group: "workers"}))
	observe := middleware.NewObservation(middleware.ObserveConfig{Group: "workers",
		Observers: []middleware.Observer{middleware.SpanEvents, metrics, traceLog}})
	retry := must(middleware.Retry(middleware.RetryConfig{MaxRetries: 1, Backoff: middleware.LinearBackoff(time.Millisecond, 0), Events: observe}))
	var calls atomic.Int32
	handled := make(chan struct{}, 2)
	runRouter(t, tr, "jobs", func(msg *message.Message) error {
		if string(msg.Payload) == `"flaky"` && calls.Add(1) == 1 {
			return errors.New("not yet")
		}
		handled <- struct{}{}
		return nil
	}, tracing, observe.Middleware, middleware.CorrelationID, retry)
	runRouter(t, tr, "plain", func(*message.Message) error {
		handled <- struct{}{}
		return nil
	}, must(middleware.Observe(middleware.ObserveConfig{Group: "workers", Observers: []middleware.Observer{metrics, traceLog}})))

	// The producer's span, whose context the message carries.
	ctx, send := middleware.StartSend(context.Background(), middleware.NewTracer(tp), "test", "jobs", newJSONMessage(`"flaky"`))
	producer := trace.SpanFromContext(ctx).SpanContext()
	msg := newJSONMessage(`"flaky"`)
	middleware.StartSend(ctx, middleware.NewTracer(tp), "test", "jobs", msg) // injects the traceparent
	middleware.EndSend(send, nil)
	if err := tr.Publish("jobs", msg); err != nil {
		t.Fatal(err)
	}
	if err := tr.Publish("plain", newJSONMessage(`"plain"`)); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case <-handled:
		case <-time.After(5 * time.Second):
			t.Fatal("not handled")
		}
	}

	var consumer sdktrace.ReadOnlySpan
	for deadline := time.Now().Add(5 * time.Second); consumer == nil && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		for _, s := range spans.Ended() {
			if s.Name() == "process jobs" {
				consumer = s
			}
		}
	}
	if consumer == nil {
		t.Fatal("no process span")
	}
	if consumer.SpanKind() != trace.SpanKindConsumer || consumer.Parent().TraceID() != producer.TraceID() {
		t.Errorf("process span: kind %v, trace %v; want CONSUMER in the producer's trace %v", consumer.SpanKind(), consumer.Parent().TraceID(), producer.TraceID())
	}
	var events []string
	for _, e := range consumer.Events() {
		events = append(events, e.Name)
	}
	if strings.Join(events, ",") != "failed,retry" {
		t.Errorf("span events %v, want failed,retry", events)
	}

	got := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(log.String()), "\n") {
		var l map[string]any
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatal(err)
		}
		if l["group"] != "workers" || l["host"] != "test" {
			t.Errorf("line %v lacks the group or host", l)
		}
		topic := l["topic"].(string)
		got[topic] = append(got[topic], l["event"].(string))
	}
	if strings.Join(got["jobs"], ",") != "failed,retried,processed" || strings.Join(got["plain"], ",") != "processed" {
		t.Errorf("trace log %v, want jobs: failed, retried, processed; plain: processed", got)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if d, ok := m.Data.(metricdata.Sum[int64]); ok {
				for _, p := range d.DataPoints {
					counts[m.Name] += p.Value
				}
			}
		}
	}
	if counts["messaging.client.consumed.messages"] != 3 || counts["pubsub.retries"] != 1 {
		t.Errorf("metrics %v: want 3 attempts (2 of jobs, 1 of plain) and 1 retry", counts)
	}
}

func newJSONMessage(payload string) *message.Message {
	m := message.NewMessage(payload, []byte(payload))
	m.Metadata.Set(metadata.ContentType, "application/json")
	return m
}
