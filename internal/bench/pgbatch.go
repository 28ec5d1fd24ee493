package main

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/internal/pgtest"
	"github.com/pubsubkit/pubsub/transport/memory"
)

// The pgbatch scenario: a handler that stores every message in PostgreSQL with an
// inbox-style dedupe (the message id goes to an inbox table, and the row is inserted
// only if the id was new there), on the memory transport with the default Delivery:
// Subscribe with one statement per message (client "subscribe") against
// SubscribeBatch with one statement per batch of at most 100 and 500, waiting 50 ms
// (client "batch", spec.Batch). The measured part runs from the first publish to the
// last message stored and acked. The server is $PUBSUB_TEST_POSTGRES, or
// 127.0.0.1:5432 (database test).

// pgBatches are the batch sizes of the pgbatch rows.
var pgBatches = []int{100, 500}

// pgBatchTarget is the batch rows' target: msgs/s at least this many times those of
// the per-message row.
const pgBatchTarget = 10

// pgRow is the payload the pgbatch rows store.
type pgRow struct {
	Seq   int     `json:"seq"`
	Value float64 `json:"value"`
}

// pgTables are the two tables of one row, made for it and dropped after.
type pgTables struct{ inbox, rows string }

func pgDSN() string {
	if dsn := os.Getenv(pgtest.EnvDSN); dsn != "" {
		return dsn
	}
	return pgtest.DefaultDSN
}

// insertRows stores rows in one statement, skipping ids the inbox already holds.
func (t pgTables) insertRows(ctx context.Context, db *sql.DB, ids []string, values []float64) error {
	_, err := db.ExecContext(ctx, fmt.Sprintf(`
		WITH fresh AS (
			INSERT INTO %s (message_id) SELECT unnest($1::text[])
			ON CONFLICT DO NOTHING RETURNING message_id)
		INSERT INTO %s (message_id, value)
		SELECT r.id, r.value FROM unnest($1::text[], $2::float8[]) AS r(id, value)
		JOIN fresh ON fresh.message_id = r.id`, t.inbox, t.rows), ids, values)
	return err
}

func pgSubscribe(s spec, m *meter) ([]time.Duration, error) {
	return pgRun(s, m, func(c *pubsub.Client, topic pubsub.Topic[pgRow], db *sql.DB, t pgTables, done func(int)) error {
		return pubsub.Subscribe(c, topic, "store", func(ctx context.Context, msg *pubsub.Message[pgRow]) error {
			if err := t.insertRows(ctx, db, []string{msg.ID}, []float64{msg.Payload.Value}); err != nil {
				return err
			}
			done(1)
			return nil
		})
	})
}

func pgBatch(s spec, m *meter) ([]time.Duration, error) {
	return pgRun(s, m, func(c *pubsub.Client, topic pubsub.Topic[pgRow], db *sql.DB, t pgTables, done func(int)) error {
		return pubsub.SubscribeBatch(c, topic, "store", func(ctx context.Context, ms []*pubsub.Message[pgRow]) error {
			ids, values := make([]string, len(ms)), make([]float64, len(ms))
			for i, msg := range ms {
				ids[i], values[i] = msg.ID, msg.Payload.Value
			}
			if err := t.insertRows(ctx, db, ids, values); err != nil {
				return err
			}
			done(len(ms))
			return nil
		}, pubsub.WithBatch(s.Batch, 50*time.Millisecond))
	})
}

// pgRun makes the row's tables and a client whose subscription subscribe makes,
// publishes s.N messages and waits until they are stored: the measured part.
func pgRun(s spec, m *meter, subscribe func(*pubsub.Client, pubsub.Topic[pgRow], *sql.DB, pgTables, func(int)) error) ([]time.Duration, error) {
	db, err := sql.Open("pgx", pgDSN())
	if err != nil {
		return nil, err
	}
	defer db.Close()
	suffix := fmt.Sprintf("%d_%d", os.Getpid(), rand.IntN(1_000_000))
	t := pgTables{inbox: "bench_inbox_" + suffix, rows: "bench_rows_" + suffix}
	if _, err := db.Exec(fmt.Sprintf(`CREATE TABLE %s (message_id text PRIMARY KEY);
		CREATE TABLE %s (message_id text NOT NULL, value float8 NOT NULL)`, t.inbox, t.rows)); err != nil {
		return nil, fmt.Errorf("pgbatch: PostgreSQL at %s (set %s): %w", pgDSN(), pgtest.EnvDSN, err)
	}
	defer db.Exec(fmt.Sprintf(`DROP TABLE IF EXISTS %s, %s`, t.inbox, t.rows))

	tr, err := memory.New(memory.Config{})
	if err != nil {
		return nil, err
	}
	c, err := pubsub.New(tr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	topic := pubsub.NewTopic[pgRow]("bench.pg")
	var stored atomic.Int64
	all := make(chan struct{})
	if err := subscribe(c, topic, db, t, func(k int) {
		if stored.Add(int64(k)) == int64(s.N) {
			close(all)
		}
	}); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- c.Run(ctx) }()
	defer func() { cancel(); <-ran }()
	<-c.Running()
	m.start()
	for i := range s.N {
		if err := pubsub.Publish(ctx, c, topic, pgRow{Seq: i, Value: float64(i)}); err != nil {
			return nil, err
		}
	}
	select {
	case <-all:
	case <-time.After(10 * time.Minute):
		return nil, fmt.Errorf("pgbatch: %d of %d messages stored after 10 minutes", stored.Load(), s.N)
	}
	m.stop()
	var rows int
	if err := db.QueryRow(fmt.Sprintf(`SELECT count(*) FROM %s`, t.rows)).Scan(&rows); err != nil || rows != s.N {
		return nil, fmt.Errorf("pgbatch: %d rows stored for %d messages (%v)", rows, s.N, err)
	}
	return nil, nil
}
