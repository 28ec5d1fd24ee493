// Batch stores sensor readings in PostgreSQL with a batch handler: each call inserts
// its whole batch in one statement, and an inbox table in the same statement skips
// every reading already stored, so a redelivered batch inserts nothing twice. A
// reading with a negative value fails alone (pubsub.Failed, permanent) and is
// dead-lettered with its reason; the rest of its batch is stored.
//
//	go run ./examples/batch                                   # memory transport, PostgreSQL on 127.0.0.1:5432
//	go run ./examples/batch -dsn postgres://me@db:5432/plant -url kafka://localhost:9092
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/pubsubkit/pubsub"
)

// Reading is one measurement of a sensor.
type Reading struct {
	ID     string  `json:"id"`
	Sensor string  `json:"sensor"`
	Value  float64 `json:"value"`
}

var readings = pubsub.NewTopic[Reading]("plant.readings",
	pubsub.WithKey(func(r Reading) string { return r.Sensor }))

func main() {
	dsn := flag.String("dsn", envOr("BATCH_DSN", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"), "PostgreSQL DSN (default $BATCH_DSN)")
	url := flag.String("url", envOr("PUBSUB_URL", "memory://"), "transport URL (default $PUBSUB_URL)")
	schema := flag.String("schema", "batch_example", "PostgreSQL schema for the example's tables, emptied at start")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := run(ctx, *dsn, *url, *schema, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "batch:", err)
		os.Exit(1)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// store is the batch handler and what it did.
type store struct {
	db         *sql.DB
	schema     string
	statements atomic.Int64 // INSERT statements run
	loseAck    atomic.Bool  // the next batch's outcome is lost after its insert committed
}

// insert stores a batch of readings in one statement. The inbox table holds the id of
// every reading stored; the statement inserts only the readings whose id it could add
// there, so a batch that comes again stores nothing twice.
func (s *store) insert(ctx context.Context, ms []*pubsub.Message[Reading]) error {
	var failed []error
	var ids, sensors []string
	var values []float64
	for _, m := range ms {
		if m.Payload.Value < 0 {
			failed = append(failed, pubsub.Failed(m, pubsub.Permanent(
				fmt.Errorf("reading %s: value %.1f is negative", m.Payload.ID, m.Payload.Value))))
			continue
		}
		ids, sensors, values = append(ids, m.ID), append(sensors, m.Payload.Sensor), append(values, m.Payload.Value)
	}
	if len(ids) > 0 {
		_, err := s.db.ExecContext(ctx, `
			WITH fresh AS (
				INSERT INTO `+s.schema+`.inbox (message_id) SELECT unnest($1::text[])
				ON CONFLICT DO NOTHING RETURNING message_id)
			INSERT INTO `+s.schema+`.readings (message_id, sensor, value)
			SELECT r.id, r.sensor, r.value FROM unnest($1::text[], $2::text[], $3::float8[]) AS r(id, sensor, value)
			JOIN fresh ON fresh.message_id = r.id`, ids, sensors, values)
		if err != nil {
			return err // the whole batch is retried
		}
		s.statements.Add(1)
		if s.loseAck.CompareAndSwap(true, false) {
			// As if the process lost the outcome after the commit: every message of the
			// batch comes again, and the inbox keeps them from being stored twice.
			return errors.New("acknowledgement lost after the insert committed")
		}
	}
	return errors.Join(failed...)
}

func run(ctx context.Context, dsn, url, schema string, out io.Writer) error {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := createTables(ctx, db, schema); err != nil {
		return err
	}
	var mu sync.Mutex
	var dead []pubsub.Event
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := pubsub.Open(ctx, url, pubsub.WithLogger(logger), pubsub.WithEventHook(func(e pubsub.Event) {
		if e.Kind == pubsub.EventDeadLettered {
			mu.Lock()
			dead = append(dead, e)
			mu.Unlock()
		}
	}))
	if err != nil {
		return err
	}
	defer c.Close()

	s := &store{db: db, schema: schema}
	s.loseAck.Store(true)
	err = pubsub.SubscribeBatch(c, readings, "storage", s.insert,
		pubsub.WithBatch(100, 200*time.Millisecond),
		pubsub.WithDelivery(pubsub.Delivery{Retry: 3, BackoffDelay: 10 * time.Millisecond, Ordering: pubsub.Unordered}))
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- c.Run(runCtx) }()
	defer func() { stop(); <-ran }()

	const n = 50
	for i := range n {
		r := Reading{ID: fmt.Sprintf("r-%02d", i), Sensor: fmt.Sprintf("s-%d", i%5), Value: float64(i)}
		if i == 17 {
			r.Value = -4 // a faulty sensor
		}
		if err := pubsub.Publish(ctx, c, readings, r); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "published %d readings (r-17 has a negative value)\n", n)

	var stored int
	for {
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM `+schema+`.readings`).Scan(&stored); err != nil {
			return err
		}
		mu.Lock()
		letters := len(dead)
		mu.Unlock()
		if stored >= n-1 && letters >= 1 {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d readings stored, %d dead-lettered: %w", stored, n-1, letters, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	mu.Lock()
	for _, e := range dead {
		fmt.Fprintf(out, "dead-lettered to %s: %v\n", e.Destination, e.Err)
	}
	mu.Unlock()
	var distinct int
	if err := db.QueryRowContext(ctx, `SELECT count(DISTINCT message_id) FROM `+schema+`.readings`).Scan(&distinct); err != nil {
		return err
	}
	fmt.Fprintf(out, "readings in the database: %d rows, %d distinct, the first batch redelivered after its commit and stored once\n", stored, distinct)
	return nil
}

func createTables(ctx context.Context, db *sql.DB, schema string) error {
	_, err := db.ExecContext(ctx, `
		CREATE SCHEMA IF NOT EXISTS `+schema+`;
		DROP TABLE IF EXISTS `+schema+`.readings, `+schema+`.inbox;
		CREATE TABLE `+schema+`.inbox (message_id text PRIMARY KEY, stored_at timestamptz NOT NULL DEFAULT now());
		CREATE TABLE `+schema+`.readings (message_id text NOT NULL, sensor text NOT NULL, value float8 NOT NULL)`)
	return err
}
