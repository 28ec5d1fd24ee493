package pubsub_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/google/uuid"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/transport/memory"
)

type benchOrder struct {
	ID       string `json:"id"`
	Customer string `json:"customer"`
	Total    int    `json:"total"`
	Note     string `json:"note"`
}

var benchValue = benchOrder{ID: "o-1", Customer: "ada", Total: 1250, Note: "leave at the door"}

// BenchmarkPublishConsumeMemory publishes b.N typed messages and waits until a handler
// has decoded them all, through the SDK on the memory transport (full middleware chain)
// and, in the same run, through a raw Watermill router on gochannel doing the same work
// (JSON encode, publish, route, JSON decode). It reports msgs/s; -benchmem gives
// allocations per message.
func BenchmarkPublishConsumeMemory(b *testing.B) {
	b.Run("sdk", benchSDK)
	b.Run("watermill-gochannel", benchWatermill)
}

func benchSDK(b *testing.B) { benchSDKWith(b) }

// benchSDKWith is benchSDK with client options.
func benchSDKWith(b *testing.B, opts ...pubsub.Option) {
	tr, _ := memory.New(memory.Config{MaxRetained: 1 << 30, MaxRetainedBytes: 1 << 40})
	c, err := pubsub.New(tr, opts...)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	topic := pubsub.NewTopic[benchOrder]("bench")
	var handled atomic.Int64
	done := make(chan struct{})
	n := int64(b.N)
	_ = pubsub.Subscribe(c, topic, "g", func(_ context.Context, m *pubsub.Message[benchOrder]) error {
		if handled.Add(1) == n {
			close(done)
		}
		return nil
	})
	go c.Run(context.Background())
	<-c.Running()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if err := pubsub.Publish(ctx, c, topic, benchValue); err != nil {
			b.Fatal(err)
		}
	}
	<-done
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

func benchWatermill(b *testing.B) {
	g := gochannel.NewGoChannel(gochannel.Config{}, nil)
	router, _ := message.NewRouter(message.RouterConfig{}, nil)
	var handled atomic.Int64
	done := make(chan struct{})
	n := int64(b.N)
	router.AddConsumerHandler("h", "bench", g, func(msg *message.Message) error {
		var o benchOrder
		if err := json.Unmarshal(msg.Payload, &o); err != nil {
			return err
		}
		if handled.Add(1) == n {
			close(done)
		}
		return nil
	})
	go router.Run(context.Background())
	<-router.Running()
	defer func() { router.Close(); g.Close() }()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		payload, _ := json.Marshal(benchValue)
		if err := g.Publish("bench", message.NewMessage(uuid.NewString(), payload)); err != nil {
			b.Fatal(err)
		}
	}
	<-done
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkObservability is BenchmarkPublishConsumeMemory's SDK case with the
// observability off (the OpenTelemetry globals, which do nothing, and no trace log),
// with tracing to an SDK tracer provider that exports nowhere, with the JSON trace log
// to io.Discard, and with both: the cost per message of each. It reports msgs/s;
// -benchmem gives allocations per message.
func BenchmarkObservability(b *testing.B) {
	tracing := func() pubsub.Option {
		return pubsub.WithTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter())))
	}
	traceLog := func() pubsub.Option { return pubsub.WithTraceLog(slog.NewJSONHandler(io.Discard, nil)) }
	b.Run("off", func(b *testing.B) { benchSDKWith(b) })
	b.Run("tracing", func(b *testing.B) { benchSDKWith(b, tracing()) })
	b.Run("tracelog", func(b *testing.B) { benchSDKWith(b, traceLog()) })
	b.Run("both", func(b *testing.B) { benchSDKWith(b, tracing(), traceLog()) })
}
