// Tracing runs a small chain, orders → invoices → emails, in which the invoice
// handler fails once and succeeds on its retry. It prints the JSON trace log, one line
// per event, then the span tree the OpenTelemetry SDK recorded: one trace across the
// three hops.
//
//	go run ./examples/tracing
//	PUBSUB_URL=kafka://127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094 go run ./examples/tracing
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/pubsubkit/pubsub"
)

type Order struct {
	ID    string `json:"id"`
	Total int    `json:"total_cents"`
}

var (
	orders   = pubsub.NewTopic[Order]("tracing.orders")
	invoices = pubsub.NewTopic[Order]("tracing.invoices")
	emails   = pubsub.NewTopic[string]("tracing.emails")
)

func main() {
	url := os.Getenv("PUBSUB_URL")
	if url == "" {
		url = "memory://"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := run(ctx, url, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "tracing:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, url string, out io.Writer) error {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer tp.Shutdown(context.Background())

	fmt.Fprintln(out, "trace log:")
	c, err := pubsub.Open(ctx, url,
		pubsub.WithTracerProvider(tp),
		pubsub.WithTraceLog(slog.NewJSONHandler(out, &slog.HandlerOptions{
			ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr { // keep the lines to the trace log's fields
				if a.Key == slog.TimeKey || a.Key == slog.LevelKey || a.Key == slog.MessageKey {
					return slog.Attr{}
				}
				return a
			},
		})))
	if err != nil {
		return err
	}
	defer c.Close()

	var invoiceCalls atomic.Int32
	done := make(chan struct{}, 1)
	retry := pubsub.WithDelivery(pubsub.Delivery{Retry: 2, BackoffDelay: 25 * time.Millisecond})
	if err := pubsub.Subscribe(c, orders, "billing", func(ctx context.Context, m *pubsub.Message[Order]) error {
		return pubsub.Publish(ctx, c, invoices, m.Payload) // continues the trace and the cid
	}); err != nil {
		return err
	}
	if err := pubsub.Subscribe(c, invoices, "mailer", func(ctx context.Context, m *pubsub.Message[Order]) error {
		if invoiceCalls.Add(1) == 1 {
			return errors.New("template service unavailable")
		}
		return pubsub.Publish(ctx, c, emails, "invoice "+m.Payload.ID)
	}, retry); err != nil {
		return err
	}
	if err := pubsub.Subscribe(c, emails, "smtp", func(ctx context.Context, m *pubsub.Message[string]) error {
		done <- struct{}{}
		return nil
	}); err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	runErr := make(chan error, 1)
	go func() { runErr <- c.Run(runCtx) }()

	if err := pubsub.Publish(ctx, c, orders, Order{ID: "o-7", Total: 4200}, pubsub.WithCorrelationID("checkout-7")); err != nil {
		return err
	}
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("waiting for the chain: %w", ctx.Err())
	}
	stop()
	if err := <-runErr; err != nil {
		return err
	}
	if err := c.Close(); err != nil {
		return err
	}
	fmt.Fprintln(out, "\nspan tree:")
	printTree(out, spans.Ended())
	return nil
}

// printTree prints spans as a tree, children under their parent, in start order.
func printTree(out io.Writer, spans []sdktrace.ReadOnlySpan) {
	slices.SortFunc(spans, func(a, b sdktrace.ReadOnlySpan) int { return a.StartTime().Compare(b.StartTime()) })
	children := map[trace.SpanID][]sdktrace.ReadOnlySpan{}
	ids := map[trace.SpanID]bool{}
	for _, s := range spans {
		ids[s.SpanContext().SpanID()] = true
	}
	var roots []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if p := s.Parent().SpanID(); p.IsValid() && ids[p] {
			children[p] = append(children[p], s)
		} else {
			roots = append(roots, s)
		}
	}
	var walk func(s sdktrace.ReadOnlySpan, depth int)
	walk = func(s sdktrace.ReadOnlySpan, depth int) {
		line := fmt.Sprintf("%s%s [%s]", strings.Repeat("  ", depth), s.Name(), strings.ToLower(s.SpanKind().String()))
		if s.Status().Code.String() == "Error" {
			line += " error: " + s.Status().Description
		}
		for _, e := range s.Events() {
			if e.Name != "exception" {
				line += " event: " + e.Name
			}
		}
		fmt.Fprintln(out, line)
		for _, c := range children[s.SpanContext().SpanID()] {
			walk(c, depth+1)
		}
	}
	for _, r := range roots {
		fmt.Fprintf(out, "trace %s\n", r.SpanContext().TraceID())
		walk(r, 1)
	}
}
