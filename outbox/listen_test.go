package outbox_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/outbox"
)

func TestNotifyWakesTheRelayAtCommit(t *testing.T) {
	db, _ := newDB(t)
	c, o := start(t, db, outbox.WithPollInterval(time.Hour))
	var k collector
	if err := pubsub.Subscribe(c, orders, "check", k.handle); err != nil {
		t.Fatal(err)
	}
	runAll(t, c, o)
	// Likely past the relay's first look and its LISTEN, so that the NOTIFY is what wakes
	// it. Should the machine be slow and the commit come first, the relay's own look
	// after LISTEN finds it: the test then passes without proving the NOTIFY, never fails.
	time.Sleep(300 * time.Millisecond)
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := outbox.Publish(ctx, tx, o, orders, order{Customer: "ada", N: 1}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	committed := time.Now()
	k.wait(t, 1)
	if d := time.Since(committed); d > 30*time.Second {
		t.Fatalf("relayed %s after the commit with an hour's poll interval: NOTIFY did not wake the relay", d)
	}
}

// plainConn hides pgx from database/sql's Raw: a driver connection without Conn()
// *pgx.Conn, as another driver's would be.
type plainConn struct{ driver.Conn }

type plainConnector struct{ driver.Connector }

func (p plainConnector) Connect(ctx context.Context) (driver.Conn, error) {
	c, err := p.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return plainConn{c}, nil
}

func TestAnotherDriverPollsOnly(t *testing.T) {
	_, dsn := newDB(t)
	connector, err := stdlib.GetDefaultDriver().(driver.DriverContext).OpenConnector(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(plainConnector{connector})
	defer db.Close()
	c, o := start(t, db, outbox.WithPollInterval(100*time.Millisecond))
	var k collector
	if err := pubsub.Subscribe(c, orders, "check", k.handle); err != nil {
		t.Fatal(err)
	}
	runAll(t, c, o)
	ctx := context.Background()
	for n := range 3 {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := outbox.Publish(ctx, tx, o, orders, order{Customer: "ada", N: n}); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	got := k.wait(t, 3)
	for i, m := range got {
		if m.Payload.N != i {
			t.Fatalf("message %d is n=%d", i, m.Payload.N)
		}
	}
}
