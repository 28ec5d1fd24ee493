package outbox_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/outbox"
)

type order struct {
	Customer string `json:"customer"`
	N        int    `json:"n"`
}

var orders = pubsub.NewTopic[order]("orders", pubsub.WithKey(func(o order) string { return o.Customer }))

// start opens a memory client, runs it and returns it with an Outbox on db.
func start(t *testing.T, db *sql.DB, opts ...outbox.Option) (*pubsub.Client, *outbox.Outbox) {
	t.Helper()
	c, err := pubsub.Open(context.Background(), "memory://")
	if err != nil {
		t.Fatal(err)
	}
	o, err := outbox.New(db, c, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c, o
}

// runAll runs the client and the given relays until the test ends.
func runAll(t *testing.T, c *pubsub.Client, relays ...*outbox.Outbox) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1 + len(relays))
	go func() { defer wg.Done(); c.Run(ctx) }()
	for _, o := range relays {
		go func() {
			defer wg.Done()
			if err := o.Run(ctx); err != nil {
				t.Errorf("Run: %v", err)
			}
		}()
	}
	<-c.Running()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		c.Close()
	})
}

// collector records the orders a plain subscription receives.
type collector struct {
	mu  sync.Mutex
	got []*pubsub.Message[order]
}

func (k *collector) handle(_ context.Context, m *pubsub.Message[order]) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.got = append(k.got, m)
	return nil
}

func (k *collector) wait(t *testing.T, n int) []*pubsub.Message[order] {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		k.mu.Lock()
		got := append([]*pubsub.Message[order](nil), k.got...)
		k.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("received %d of %d messages", len(got), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCommittedMessagesAreRelayedRolledBackOnesAreNot(t *testing.T) {
	db, _ := newDB(t)
	c, o := start(t, db)
	var k collector
	if err := pubsub.Subscribe(c, orders, "check", k.handle); err != nil {
		t.Fatal(err)
	}
	runAll(t, c, o)
	ctx := context.Background()
	for n := range 10 {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := outbox.Publish(ctx, tx, o, orders, order{Customer: "ada", N: n}, pubsub.WithCorrelationID("conv-1")); err != nil {
			t.Fatal(err)
		}
		if n%2 == 1 {
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	got := k.wait(t, 5)
	time.Sleep(200 * time.Millisecond)
	got = k.wait(t, 5)
	if len(got) != 5 {
		t.Fatalf("received %d messages, want the 5 committed ones", len(got))
	}
	for i, m := range got {
		if m.Payload.N != 2*i || m.Key != "ada" || m.CorrelationID != "conv-1" {
			t.Errorf("message %d: %+v key %q correlation %q; want n=%d key ada conv-1", i, m.Payload, m.Key, m.CorrelationID, 2*i)
		}
	}
	if n, err := o.Pending(ctx); err != nil || n != 0 {
		t.Errorf("Pending = %d, %v; want 0 after relaying", n, err)
	}
}

func TestAKeysTransactionsCommitOneAfterTheOther(t *testing.T) {
	db, _ := newDB(t)
	c, o := start(t, db)
	var k collector
	if err := pubsub.Subscribe(c, orders, "check", k.handle); err != nil {
		t.Fatal(err)
	}
	runAll(t, c, o)
	ctx := context.Background()
	first, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := outbox.Publish(ctx, first, o, orders, order{Customer: "ada", N: 1}); err != nil {
		t.Fatal(err)
	}
	secondDone := make(chan error, 1)
	go func() {
		tx, err := db.BeginTx(ctx, nil)
		if err == nil {
			err = outbox.Publish(ctx, tx, o, orders, order{Customer: "ada", N: 2})
		}
		if err == nil {
			err = tx.Commit()
		}
		secondDone <- err
	}()
	select {
	case err := <-secondDone:
		t.Fatalf("a second transaction on the key committed (%v) while the first was open", err)
	case <-time.After(300 * time.Millisecond):
	}
	// Another key is not held up.
	other, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := outbox.Publish(ctx, other, o, orders, order{Customer: "grace", N: 3}); err != nil {
		t.Fatal(err)
	}
	if err := other.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := first.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-secondDone; err != nil {
		t.Fatal(err)
	}
	got := k.wait(t, 3)
	var ada []int
	for _, m := range got {
		if m.Key == "ada" {
			ada = append(ada, m.Payload.N)
		}
	}
	if fmt.Sprint(ada) != "[1 2]" {
		t.Fatalf("ada's messages arrived as %v, want commit order [1 2]", ada)
	}
}

func TestSeveralRelaysKeepEachKeysOrder(t *testing.T) {
	db, _ := newDB(t)
	c, o := start(t, db, outbox.WithBatchSize(50))
	var k collector
	if err := pubsub.Subscribe(c, orders, "check", k.handle); err != nil {
		t.Fatal(err)
	}
	relays := []*outbox.Outbox{o}
	for range 2 {
		r, err := outbox.New(db, c, outbox.WithBatchSize(50))
		if err != nil {
			t.Fatal(err)
		}
		relays = append(relays, r)
	}
	runAll(t, c, relays...)
	const writers, keysPerWriter, perKey = 4, 5, 60
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range perKey {
				for kk := range keysPerWriter {
					tx, err := db.BeginTx(ctx, nil)
					if err != nil {
						t.Error(err)
						return
					}
					v := order{Customer: fmt.Sprintf("c%d-%d", w, kk), N: n}
					if err := outbox.Publish(ctx, tx, relays[(n+kk)%3], orders, v); err != nil {
						t.Error(err)
						return
					}
					if err := tx.Commit(); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	total := writers * keysPerWriter * perKey
	got := k.wait(t, total)
	time.Sleep(200 * time.Millisecond)
	got = k.wait(t, total)
	if len(got) != total {
		t.Errorf("received %d messages, want %d exactly once", len(got), total)
	}
	next := map[string]int{}
	for _, m := range got {
		if m.Payload.N != next[m.Key] {
			t.Fatalf("key %s: got n=%d, want %d", m.Key, m.Payload.N, next[m.Key])
		}
		next[m.Key]++
	}
	var relayed int64
	for _, r := range relays {
		relayed += r.Stats().Relayed
	}
	if relayed != int64(total) {
		t.Errorf("the relays relayed %d messages, want %d", relayed, total)
	}
}

func TestPollingWithoutListen(t *testing.T) {
	db, _ := newDB(t)
	c, o := start(t, db, outbox.WithoutListen(), outbox.WithPollInterval(50*time.Millisecond))
	var k collector
	if err := pubsub.Subscribe(c, orders, "check", k.handle); err != nil {
		t.Fatal(err)
	}
	runAll(t, c, o)
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := outbox.Publish(ctx, tx, o, orders, order{Customer: "ada", N: 7}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := k.wait(t, 1); got[0].Payload.N != 7 {
		t.Fatalf("got %+v", got[0].Payload)
	}
}

func TestNewCreatesVersionedTablesAndRefusesANewerVersion(t *testing.T) {
	db, _ := newDB(t)
	c, _ := start(t, db, outbox.WithTablePrefix("shop_"))
	defer c.Close()
	if _, err := outbox.New(db, c, outbox.WithTablePrefix("shop_")); err != nil {
		t.Fatalf("New on existing tables: %v", err)
	}
	var v int
	if err := db.QueryRow(`SELECT max(version) FROM shop_outbox_schema`).Scan(&v); err != nil || v != outbox.SchemaVersion {
		t.Fatalf("schema version %d, %v; want %d", v, err, outbox.SchemaVersion)
	}
	if _, err := db.Exec(`INSERT INTO shop_outbox_schema (version) VALUES (99)`); err != nil {
		t.Fatal(err)
	}
	if _, err := outbox.New(db, c, outbox.WithTablePrefix("shop_")); err == nil {
		t.Fatal("New accepted tables of schema version 99")
	}
	for _, bad := range []outbox.Option{outbox.WithTablePrefix("Bad-Prefix"), outbox.WithSchema("x;drop"), outbox.WithBatchSize(0),
		outbox.WithPollInterval(0), outbox.WithInboxRetention(-time.Hour), outbox.WithLogger(nil)} {
		if _, err := outbox.New(db, c, bad); !errors.Is(err, pubsub.ErrInvalidOption) {
			t.Errorf("New with an invalid option: %v, want ErrInvalidOption", err)
		}
	}
	if err := outbox.Publish(context.Background(), nil, &outbox.Outbox{}, orders, order{}); !errors.Is(err, pubsub.ErrInvalidOption) {
		t.Errorf("Publish with a nil transaction: %v, want ErrInvalidOption", err)
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := outbox.Publish(context.Background(), tx, nil, orders, order{}); !errors.Is(err, pubsub.ErrInvalidOption) {
		t.Errorf("Publish with a nil Outbox: %v, want ErrInvalidOption", err)
	}
	if err := outbox.Subscribe[order](nil, orders, "g", nil); !errors.Is(err, pubsub.ErrInvalidOption) {
		t.Errorf("Subscribe with a nil Outbox: %v, want ErrInvalidOption", err)
	}
}
