package pubsub_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/transport/memory"
)

func probe(t *testing.T, h http.Handler) int {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	return rec.Code
}

// TestHealthPauseAndProbes: readiness fails before Run and passes once every
// subscription consumes; Health shows lag and the handler in flight; a handler stuck
// with messages waiting makes the subscription stalled and liveness fail, unless it is
// paused; Pause stops new messages and Resume lets them through; the lag gauge reports
// the waiting messages.
func TestHealthPauseAndProbes(t *testing.T) {
	tr, err := memory.New(memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	c, err := pubsub.New(tr, pubsub.WithStallAfter(200*time.Millisecond),
		pubsub.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))), pubsub.WithEventHistory(100))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	topic := pubsub.NewTopic[string]("health")
	release := make(chan struct{})
	started := make(chan string, 10)
	must(t, pubsub.Subscribe(c, topic, "g", func(_ context.Context, m *pubsub.Message[string]) error {
		started <- m.Payload
		<-release
		return nil
	}))
	if code := probe(t, c.ReadinessHandler()); code != http.StatusServiceUnavailable {
		t.Errorf("readiness before Run: %d, want 503", code)
	}
	go c.Run(context.Background())
	<-c.Running()
	if code := probe(t, c.ReadinessHandler()); code != http.StatusOK {
		t.Errorf("readiness while running: %d, want 200", code)
	}
	ctx := context.Background()
	for _, v := range []string{"a", "b", "c"} {
		must(t, pubsub.Publish(ctx, c, topic, v, pubsub.WithCorrelationID("conv-"+v)))
	}
	<-started // "a" is in the handler; b and c wait
	var h pubsub.SubscriptionHealth
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		h = c.Health()[0]
		if h.Stalled || time.Now().After(deadline) {
			break
		}
	}
	if !h.Consuming || h.InFlight != 1 || h.Lag != 3 || !h.Stalled || len(h.Partitions) != 1 {
		t.Fatalf("health of a stuck subscription: %+v", h)
	}
	if code := probe(t, c.LivenessHandler()); code != http.StatusServiceUnavailable {
		t.Errorf("liveness while stalled: %d, want 503", code)
	}
	var rm metricdata.ResourceMetrics
	must(t, reader.Collect(ctx, &rm))
	if lag := gaugeValue(rm, "messaging.client.consumer.lag"); lag != 3 {
		t.Errorf("messaging.client.consumer.lag = %d, want 3", lag)
	}

	must(t, c.Pause(topic.Name(), "g"))
	if code := probe(t, c.LivenessHandler()); code != http.StatusOK {
		t.Errorf("liveness while paused: %d, want 200 (a deliberate pause is not a failure)", code)
	}
	release <- struct{}{} // "a" finishes; b must not start while paused
	select {
	case v := <-started:
		t.Fatalf("%s started while the subscription was paused", v)
	case <-time.After(200 * time.Millisecond):
	}
	if h := c.Health()[0]; !h.Paused || h.Stalled {
		t.Errorf("health while paused: %+v", h)
	}
	must(t, c.Resume(topic.Name(), "g"))
	close(release)
	for _, want := range []string{"b", "c"} {
		select {
		case v := <-started:
			if v != want {
				t.Fatalf("after Resume %s started, want %s", v, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("nothing after Resume")
		}
	}
	if events := c.History("conv-b"); len(events) < 2 || events[0].Kind != pubsub.EventPublished {
		t.Errorf("History(conv-b) = %+v; want its published event first", events)
	}
	if err := c.Pause(topic.Name(), "nope"); !errors.Is(err, pubsub.ErrUnknownSubscription) {
		t.Errorf("Pause of an unknown subscription: %v", err)
	}
}

func gaugeValue(rm metricdata.ResourceMetrics, name string) int64 {
	var sum int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if g, ok := m.Data.(metricdata.Gauge[int64]); ok && m.Name == name {
				for _, p := range g.DataPoints {
					sum += p.Value
				}
			}
		}
	}
	return sum
}
