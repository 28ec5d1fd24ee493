// Deadletters shows the life of a message that fails: retries with backoff, a dead
// letter that says why, a fix, and a replay to the group that failed it, while a
// second group on the same topic is untouched.
//
//	go run ./examples/deadletters
//	PUBSUB_URL=kafka://127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094 go run ./examples/deadletters
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pubsubkit/pubsub"
)

// Payment is the payload of the payments topic.
type Payment struct {
	ID     string `json:"id"`
	Amount int    `json:"amount_cents"`
}

var payments = pubsub.NewTopic[Payment]("deadletters.payments")

func main() {
	url := os.Getenv("PUBSUB_URL")
	if url == "" {
		url = "memory://"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := run(ctx, url, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "deadletters:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, url string, out io.Writer) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	c, err := pubsub.Open(ctx, url, pubsub.WithLogger(logger))
	if err != nil {
		return err
	}
	defer c.Close()

	// The ledger rejects large payments until the limit is raised: the "bug".
	var limit atomic.Int64
	limit.Store(10_000)
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, format+"\n", args...)
	}
	booked := make(chan string, 10)
	ledger := func(ctx context.Context, m *pubsub.Message[Payment]) error {
		if m.Payload.Amount > int(limit.Load()) {
			say("ledger: %s attempt %d failed", m.Payload.ID, m.Attempt)
			return fmt.Errorf("amount %d over the ledger limit %d", m.Payload.Amount, limit.Load())
		}
		say("ledger: booked %s (attempt %d)", m.Payload.ID, m.Attempt)
		booked <- m.Payload.ID
		return nil
	}
	receipts := make(chan string, 10)
	receipt := func(ctx context.Context, m *pubsub.Message[Payment]) error {
		receipts <- m.Payload.ID
		return nil
	}
	delivery := pubsub.Delivery{Retry: 2, BackoffDelay: 50 * time.Millisecond} // waits 100ms, 200ms
	if err := pubsub.Subscribe(c, payments, "ledger", ledger, pubsub.WithDelivery(delivery)); err != nil {
		return err
	}
	if err := pubsub.Subscribe(c, payments, "receipts", receipt); err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	runErr := make(chan error, 1)
	go func() { runErr <- c.Run(runCtx) }()

	for _, p := range []Payment{{"p-1", 500}, {"p-2", 25_000}, {"p-3", 700}} {
		if err := pubsub.Publish(ctx, c, payments, p, pubsub.WithCorrelationID("checkout-"+p.ID)); err != nil {
			return err
		}
	}
	if err := waitFor(ctx, booked, 2); err != nil {
		return err
	}

	letters, err := waitDeadLetters(ctx, c, 1)
	if err != nil {
		return err
	}
	for _, l := range letters {
		say("dead letter: %s after %d attempts, cid %s: %s", l.ID[:8], l.Attempts, l.CorrelationID, l.Reason)
	}

	say("fix: raising the ledger limit")
	limit.Store(100_000)
	n, err := c.Replay(ctx, payments.Name(), "ledger", pubsub.ReplayAll())
	if err != nil {
		return err
	}
	say("replayed %d dead letter(s) to the ledger group", n)
	if err := waitFor(ctx, booked, 1); err != nil {
		return err
	}
	if letters, err = c.DeadLetters(ctx, payments.Name(), "ledger"); err != nil {
		return err
	}
	say("dead letters left: %d", len(letters))
	if err := waitFor(ctx, receipts, 3); err != nil {
		return err
	}
	select {
	case extra := <-receipts:
		return fmt.Errorf("the receipts group saw %s twice", extra)
	case <-time.After(100 * time.Millisecond):
	}
	say("receipts group: 3 payments, each once")
	stop()
	return errors.Join(<-runErr, c.Close())
}

func waitFor(ctx context.Context, ch <-chan string, n int) error {
	for range n {
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting: %w", ctx.Err())
		}
	}
	return nil
}

func waitDeadLetters(ctx context.Context, c *pubsub.Client, n int) ([]pubsub.DeadLetter, error) {
	for {
		letters, err := c.DeadLetters(ctx, payments.Name(), "ledger")
		if err != nil || len(letters) >= n {
			return letters, err
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the dead letter: %w", ctx.Err())
		}
	}
}
