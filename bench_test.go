package pubsub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
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

// BenchmarkPublishConsumeMemory publishes b.N typed messages from 1 and from 16
// goroutines and waits until a handler has decoded them all, through the SDK on the
// memory transport (full middleware chain) and, in the same run, through a raw
// Watermill router on gochannel doing the same work (JSON encode, publish, route, JSON
// decode). It reports msgs/s; -benchmem gives allocations per message, publishing and
// consuming.
//
//	go test -run '^$' -bench PublishConsumeMemory -benchmem -benchtime 100000x .
func BenchmarkPublishConsumeMemory(b *testing.B) {
	for _, callers := range []int{1, 16} {
		b.Run(fmt.Sprintf("sdk/callers=%d", callers), func(b *testing.B) { benchSDKWith(b, callers) })
		b.Run(fmt.Sprintf("watermill-gochannel/callers=%d", callers), func(b *testing.B) { benchWatermill(b, callers) })
	}
}

// publishAll calls publish b.N times, from callers goroutines.
func publishAll(b *testing.B, callers int, publish func() error) {
	var wg sync.WaitGroup
	for i := range callers {
		n := b.N / callers
		if i < b.N%callers {
			n++
		}
		wg.Go(func() {
			for range n {
				if err := publish(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// benchSDKWith publishes and consumes through the SDK, with client options.
func benchSDKWith(b *testing.B, callers int, opts ...pubsub.Option) {
	tr, err := memory.New(memory.Config{MaxRetained: 1 << 30, MaxRetainedBytes: 1 << 40, MaxBytes: 1 << 40})
	if err != nil {
		b.Fatal(err)
	}
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
	publishAll(b, callers, func() error { return pubsub.Publish(ctx, c, topic, benchValue) })
	<-done
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

func benchWatermill(b *testing.B, callers int) {
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
	publishAll(b, callers, func() error {
		payload, err := json.Marshal(benchValue)
		if err != nil {
			return err
		}
		return g.Publish("bench", message.NewMessage(uuid.NewString(), payload))
	})
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
	b.Run("off", func(b *testing.B) { benchSDKWith(b, 1) })
	b.Run("tracing", func(b *testing.B) { benchSDKWith(b, 1, tracing()) })
	b.Run("tracelog", func(b *testing.B) { benchSDKWith(b, 1, traceLog()) })
	b.Run("both", func(b *testing.B) { benchSDKWith(b, 1, tracing(), traceLog()) })
}
