// Outboxproducer writes orders to PostgreSQL, each with its OrderPlaced event through
// the transactional outbox in the same transaction, and relays the outbox to the
// transport. Every fifth order is rolled back (reliability.RolledBack). It resumes
// after the highest committed order, so it can be killed and started again; it exits
// once order -n is written and the outbox is empty.
//
//	go run ./internal/reliability/outboxproducer -url kafka://127.0.0.1:9092 -dsn postgres://postgres@127.0.0.1/test -topic orders -n 3000
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/internal/reliability"
	"github.com/pubsubkit/pubsub/outbox"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "outboxproducer:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("outboxproducer", flag.ContinueOnError)
	url := fs.String("url", os.Getenv("PUBSUB_URL"), "transport URL (default $PUBSUB_URL)")
	dsn := fs.String("dsn", "", "PostgreSQL DSN (required)")
	topicName := fs.String("topic", "orders", "topic")
	n := fs.Int64("n", 3000, "orders to write, 1..n")
	hold := fs.Duration("hold", time.Millisecond, "time each transaction stays open between its writes and its commit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *url == "" || *dsn == "" {
		return fmt.Errorf("-url (or PUBSUB_URL) and -dsn are required")
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	db, err := sql.Open("pgx", *dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS orders (id bigint PRIMARY KEY, customer text NOT NULL)`); err != nil {
		return err
	}
	openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := pubsub.Open(openCtx, *url, pubsub.WithLogger(logger))
	if err != nil {
		return err
	}
	defer c.Close()
	o, err := outbox.New(db, c, outbox.WithLogger(logger), outbox.WithPollInterval(100*time.Millisecond))
	if err != nil {
		return err
	}
	relayCtx, stopRelay := context.WithCancel(ctx)
	relayed := make(chan error, 1)
	go func() { relayed <- o.Run(relayCtx) }()
	defer func() { stopRelay(); <-relayed }()

	topic := reliability.OrderTopic(*topicName)
	var next int64
	if err := db.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) + 1 FROM orders`).Scan(&next); err != nil {
		return err
	}
	for id := next; id <= *n; id++ {
		if err := placeOrder(ctx, db, o, topic, id, *hold); err != nil {
			return fmt.Errorf("order %d: %w", id, err)
		}
	}
	for {
		pending, err := o.Pending(ctx)
		if err != nil {
			return err
		}
		if pending == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// placeOrder writes order id and its event in one transaction, and commits it unless
// the scenario rolls it back.
func placeOrder(ctx context.Context, db *sql.DB, o *outbox.Outbox, topic pubsub.Topic[reliability.OrderPlaced], id int64, hold time.Duration) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	customer := reliability.Customer(id)
	if _, err := tx.ExecContext(ctx, `INSERT INTO orders (id, customer) VALUES ($1, $2)`, id, customer); err != nil {
		return err
	}
	if err := outbox.Publish(ctx, tx, o, topic, reliability.OrderPlaced{Order: id, Customer: customer}); err != nil {
		return err
	}
	time.Sleep(hold)
	if reliability.RolledBack(id) {
		return tx.Rollback()
	}
	return tx.Commit()
}
