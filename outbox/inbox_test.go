package outbox_test

import (
	"context"
	"database/sql"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/outbox"
)

// charges counts the rows a handler wrote for each order.
func charges(t *testing.T, db *sql.DB) map[int]int {
	t.Helper()
	rows, err := db.Query(`SELECT n, count(*) FROM charges GROUP BY n`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[int]int{}
	for rows.Next() {
		var n, c int
		if err := rows.Scan(&n, &c); err != nil {
			t.Fatal(err)
		}
		got[n] = c
	}
	return got
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestInboxHandlesARedeliveryOnce(t *testing.T) {
	db, _ := newDB(t)
	if _, err := db.Exec(`CREATE TABLE charges (n int NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	c, o := start(t, db)
	var calls atomic.Int64
	err := outbox.Subscribe(o, orders, "billing", func(ctx context.Context, tx *sql.Tx, m *pubsub.Message[order]) error {
		calls.Add(1)
		_, err := tx.ExecContext(ctx, `INSERT INTO charges (n) VALUES ($1)`, m.Payload.N)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	runAll(t, c)
	ctx := context.Background()
	msg, err := pubsub.Encode(ctx, c, orders, order{Customer: "ada", N: 1})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 { // the same message, id and all, three times: a redelivery
		if err := c.PublishMessage(ctx, orders.Name(), msg.Copy()); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "two duplicates acked", func() bool { return o.Stats().Duplicates == 2 })
	if got := charges(t, db); got[1] != 1 || calls.Load() != 1 {
		t.Fatalf("charges %v after %d handler calls; want one charge, one call", got, calls.Load())
	}
}

func TestInboxRollsBackAFailedAttemptAndRetries(t *testing.T) {
	db, _ := newDB(t)
	if _, err := db.Exec(`CREATE TABLE charges (n int NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	c, o := start(t, db)
	var calls atomic.Int64
	err := outbox.Subscribe(o, orders, "billing", func(ctx context.Context, tx *sql.Tx, m *pubsub.Message[order]) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO charges (n) VALUES ($1)`, m.Payload.N); err != nil {
			return err
		}
		if m.Payload.N == 2 {
			return pubsub.Permanent(errors.New("card refused")) // dead-lettered at once, nothing kept
		}
		if calls.Add(1) < 3 {
			return errors.New("payment service down") // rolled back, retried
		}
		return nil
	}, pubsub.WithDelivery(pubsub.Delivery{Retry: 3, BackoffDelay: time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	runAll(t, c)
	ctx := context.Background()
	for _, n := range []int{1, 2} {
		if err := pubsub.Publish(ctx, c, orders, order{Customer: "ada", N: n}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the dead letter", func() bool {
		dl, err := c.DeadLetters(ctx, orders.Name(), "billing")
		return err == nil && len(dl) == 1
	})
	waitFor(t, "the third attempt", func() bool { return charges(t, db)[1] == 1 })
	if got := charges(t, db); got[1] != 1 || got[2] != 0 {
		t.Fatalf("charges %v; want order 1 charged once (the two failed attempts rolled back), order 2 not at all", got)
	}
	var handled int
	if err := db.QueryRow(`SELECT count(*) FROM pubsub_inbox WHERE group_name = 'billing'`).Scan(&handled); err != nil || handled != 1 {
		t.Fatalf("inbox holds %d records (%v); want 1: a dead-lettered message is not recorded", handled, err)
	}
}

func TestPruneDeletesOldInboxRecords(t *testing.T) {
	db, _ := newDB(t)
	c, o := start(t, db, outbox.WithInboxRetention(time.Hour))
	defer c.Close()
	if _, err := db.Exec(`INSERT INTO pubsub_inbox (group_name, message_id, handled_at) VALUES
		('g', 'old', now() - interval '2 hours'), ('g', 'new', now() - interval '10 minutes')`); err != nil {
		t.Fatal(err)
	}
	n, err := o.Prune(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v; want 1", n, err)
	}
	var left string
	if err := db.QueryRow(`SELECT message_id FROM pubsub_inbox`).Scan(&left); err != nil || left != "new" {
		t.Fatalf("left %q, %v; want the recent record", left, err)
	}
}
