// Inboxconsumer consumes the outbox scenarios' OrderPlaced events and applies one side
// effect per event: a row in the effects table. With -inbox the row is written
// through the outbox's inbox (outbox.Subscribe), in one transaction with the record
// that the event was handled; without it, by a plain pubsub.Subscribe handler, as a
// handler that is not idempotent would. It consumes until signalled.
//
//	go run ./internal/reliability/inboxconsumer -url kafka://127.0.0.1:9092 -dsn postgres://postgres@127.0.0.1/test -topic orders -group billing -inbox
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
		fmt.Fprintln(os.Stderr, "inboxconsumer:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("inboxconsumer", flag.ContinueOnError)
	url := fs.String("url", os.Getenv("PUBSUB_URL"), "transport URL (default $PUBSUB_URL)")
	dsn := fs.String("dsn", "", "PostgreSQL DSN (required)")
	topicName := fs.String("topic", "orders", "topic")
	group := fs.String("group", "billing", "consumer group")
	inbox := fs.Bool("inbox", false, "apply the side effect through the inbox")
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
	db.SetMaxOpenConns(8)
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS effects (order_id bigint NOT NULL, message_id text NOT NULL)`); err != nil {
		return err
	}
	openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := pubsub.Open(openCtx, *url, pubsub.WithLogger(logger))
	if err != nil {
		return err
	}
	defer c.Close()
	topic := reliability.OrderTopic(*topicName)
	const effect = `INSERT INTO effects (order_id, message_id) VALUES ($1, $2)`
	if *inbox {
		o, err := outbox.New(db, c, outbox.WithLogger(logger))
		if err != nil {
			return err
		}
		err = outbox.Subscribe(o, topic, *group, func(ctx context.Context, tx *sql.Tx, m *pubsub.Message[reliability.OrderPlaced]) error {
			_, err := tx.ExecContext(ctx, effect, m.Payload.Order, m.ID)
			return err
		})
		if err != nil {
			return err
		}
	} else {
		err := pubsub.Subscribe(c, topic, *group, func(ctx context.Context, m *pubsub.Message[reliability.OrderPlaced]) error {
			_, err := db.ExecContext(ctx, effect, m.Payload.Order, m.ID)
			return err
		})
		if err != nil {
			return err
		}
	}
	return c.Run(ctx)
}
