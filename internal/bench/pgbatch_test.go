package main

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/internal/pgtest"
	"github.com/pubsubkit/pubsub/transport/memory"
)

// pgRow is the payload the PostgreSQL benchmark stores.
type pgRow struct {
	Seq   int     `json:"seq"`
	Value float64 `json:"value"`
}

// BenchmarkPostgresInsert is a handler that stores every message in PostgreSQL with
// an inbox-style dedupe (the message id goes to an inbox table, and the row is
// inserted only if the id was new there), on the memory transport with the default
// Delivery: Subscribe with one INSERT statement per message, against SubscribeBatch
// with one statement per batch of at most 100 and 500 (wait 50 ms). It reports
// msgs/s, from the first publish to the last message stored and acked:
//
//	go test ./internal/bench -run '^$' -bench PostgresInsert -benchtime 20000x
func BenchmarkPostgresInsert(b *testing.B) {
	db := pgtest.New(b, "bench_pgbatch")
	b.Run("subscribe", func(b *testing.B) {
		benchPostgres(b, db.DB, func(c *pubsub.Client, t pubsub.Topic[pgRow], done func(int)) error {
			return pubsub.Subscribe(c, t, "store", func(ctx context.Context, m *pubsub.Message[pgRow]) error {
				if err := insertRows(ctx, db.DB, []string{m.ID}, []float64{m.Payload.Value}); err != nil {
					return err
				}
				done(1)
				return nil
			})
		})
	})
	for _, size := range []int{100, 500} {
		b.Run(fmt.Sprintf("batch%d", size), func(b *testing.B) {
			benchPostgres(b, db.DB, func(c *pubsub.Client, t pubsub.Topic[pgRow], done func(int)) error {
				return pubsub.SubscribeBatch(c, t, "store", func(ctx context.Context, ms []*pubsub.Message[pgRow]) error {
					ids, values := make([]string, len(ms)), make([]float64, len(ms))
					for i, m := range ms {
						ids[i], values[i] = m.ID, m.Payload.Value
					}
					if err := insertRows(ctx, db.DB, ids, values); err != nil {
						return err
					}
					done(len(ms))
					return nil
				}, pubsub.WithBatch(size, 50*time.Millisecond))
			})
		})
	}
}

// insertRows stores rows in one statement, skipping ids the inbox already holds.
func insertRows(ctx context.Context, db *sql.DB, ids []string, values []float64) error {
	_, err := db.ExecContext(ctx, `
		WITH fresh AS (
			INSERT INTO bench_inbox (message_id) SELECT unnest($1::text[])
			ON CONFLICT DO NOTHING RETURNING message_id)
		INSERT INTO bench_rows (message_id, value)
		SELECT r.id, r.value FROM unnest($1::text[], $2::float8[]) AS r(id, value)
		JOIN fresh ON fresh.message_id = r.id`, ids, values)
	return err
}

// benchPostgres publishes b.N messages to a fresh client whose subscription subscribe
// makes, and waits until they are stored.
func benchPostgres(b *testing.B, db *sql.DB, subscribe func(*pubsub.Client, pubsub.Topic[pgRow], func(int)) error) {
	if _, err := db.Exec(`DROP TABLE IF EXISTS bench_rows, bench_inbox;
		CREATE TABLE bench_inbox (message_id text PRIMARY KEY);
		CREATE TABLE bench_rows (message_id text NOT NULL, value float8 NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	tr, err := memory.New(memory.Config{})
	if err != nil {
		b.Fatal(err)
	}
	c, err := pubsub.New(tr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	topic := pubsub.NewTopic[pgRow]("bench.pg")
	var stored atomic.Int64
	all := make(chan struct{})
	n := int64(b.N)
	if err := subscribe(c, topic, func(k int) {
		if stored.Add(int64(k)) == n {
			close(all)
		}
	}); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- c.Run(ctx) }()
	defer func() { cancel(); <-ran }()
	<-c.Running()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if err := pubsub.Publish(ctx, c, topic, pgRow{Seq: i, Value: float64(i)}); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-all:
	case <-time.After(10 * time.Minute):
		b.Fatalf("%d of %d messages stored", stored.Load(), n)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	var rows int
	if err := db.QueryRow(`SELECT count(*) FROM bench_rows`).Scan(&rows); err != nil || rows != b.N {
		b.Fatalf("%d rows stored for %d messages (%v)", rows, b.N, err)
	}
}
