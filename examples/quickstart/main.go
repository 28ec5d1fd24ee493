// Quickstart publishes a few typed orders and handles them in two consumer groups,
// billing and shipping, then prints what each group did and exits.
//
//	go run ./examples/quickstart                      # in-process memory transport
//	PUBSUB_URL=kafka://localhost:9092 go run ./examples/quickstart
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pubsubkit/pubsub"
)

// Order is the payload of the orders topic.
type Order struct {
	ID       string `json:"id"`
	Customer string `json:"customer"`
	Total    int    `json:"total_cents"`
}

// Orders are keyed by customer, so one customer's orders keep their order.
var orders = pubsub.NewTopic[Order]("quickstart.orders",
	pubsub.WithKey(func(o Order) string { return o.Customer }))

func main() {
	url := os.Getenv("PUBSUB_URL")
	if url == "" {
		url = "memory://"
	}
	// Ctrl-C and SIGTERM (what Kubernetes sends) end ctx, and the client drains.
	sig, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(sig, 30*time.Second)
	defer cancel()
	if err := run(ctx, url, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, url string, out io.Writer) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := pubsub.Open(ctx, url, pubsub.WithLogger(logger))
	if err != nil {
		return err
	}
	defer c.Close()

	toSend := []Order{
		{ID: "o-1", Customer: "ada", Total: 1250},
		{ID: "o-2", Customer: "grace", Total: 990},
		{ID: "o-3", Customer: "ada", Total: 4200},
	}
	var mu sync.Mutex
	lines := map[string][]string{}
	done := make(chan struct{}, 2*len(toSend))
	handler := func(group, verb string) pubsub.Handler[Order] {
		return func(ctx context.Context, m *pubsub.Message[Order]) error {
			mu.Lock()
			lines[group] = append(lines[group], fmt.Sprintf("%s %s for %s (%d.%02d), attempt %d",
				verb, m.Payload.ID, m.Payload.Customer, m.Payload.Total/100, m.Payload.Total%100, m.Attempt))
			mu.Unlock()
			done <- struct{}{}
			return nil
		}
	}
	if err := pubsub.Subscribe(c, orders, "billing", handler("billing", "invoiced")); err != nil {
		return err
	}
	if err := pubsub.Subscribe(c, orders, "shipping", handler("shipping", "shipped")); err != nil {
		return err
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	runErr := make(chan error, 1)
	go func() { runErr <- c.Run(runCtx) }()

	for _, o := range toSend {
		if err := pubsub.Publish(ctx, c, orders, o); err != nil {
			return err
		}
		fmt.Fprintf(out, "published %s\n", o.ID)
	}
	for range 2 * len(toSend) {
		select {
		case <-done:
		case err := <-runErr:
			return fmt.Errorf("consumer stopped: %w", err)
		case <-ctx.Done():
			return fmt.Errorf("waiting for handlers: %w", ctx.Err())
		}
	}
	stop()
	if err := <-runErr; err != nil {
		return err
	}

	for _, g := range slices.Sorted(maps.Keys(lines)) {
		fmt.Fprintf(out, "%s:\n  %s\n", g, strings.Join(lines[g], "\n  "))
	}
	return c.Close()
}
