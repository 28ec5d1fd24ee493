// Outbox is an order service and a billing service sharing one PostgreSQL database.
// The order service writes each order and its OrderPlaced event in one transaction
// through the transactional outbox; the relay publishes committed events; billing
// charges each order through the inbox, in one transaction with the record that the
// event was handled. An order that fails validation is rolled back and publishes
// nothing; a charge whose first attempt fails after writing is rolled back and
// retried, and charged once.
//
//	go run ./examples/outbox                                   # memory transport, PostgreSQL on 127.0.0.1:5432
//	go run ./examples/outbox -dsn postgres://me@db:5432/shop -url kafka://localhost:9092
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
	"slices"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/outbox"
)

// OrderPlaced is the event of a committed order.
type OrderPlaced struct {
	Order    string `json:"order"`
	Customer string `json:"customer"`
	Total    int    `json:"total_cents"`
}

// Events are keyed by customer: one customer's orders are relayed and charged in the
// order they committed.
var orderPlaced = pubsub.NewTopic[OrderPlaced]("shop.order-placed",
	pubsub.WithKey(func(o OrderPlaced) string { return o.Customer }))

func main() {
	dsn := flag.String("dsn", envOr("OUTBOX_DSN", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"), "PostgreSQL DSN (default $OUTBOX_DSN)")
	url := flag.String("url", envOr("PUBSUB_URL", "memory://"), "transport URL (default $PUBSUB_URL)")
	schema := flag.String("schema", "outbox_example", "PostgreSQL schema for the example's tables, created if missing")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := run(ctx, *dsn, *url, *schema, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "outbox:", err)
		os.Exit(1)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
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
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := pubsub.Open(ctx, url, pubsub.WithLogger(logger))
	if err != nil {
		return err
	}
	defer c.Close()
	ob, err := outbox.New(db, c, outbox.WithSchema(schema), outbox.WithLogger(logger))
	if err != nil {
		return err
	}

	b := &billing{schema: schema, failOnce: map[string]bool{"o-2": true}}
	err = outbox.Subscribe(ob, orderPlaced, "billing", b.charge,
		pubsub.WithDelivery(pubsub.Delivery{Retry: 3, BackoffDelay: 10 * time.Millisecond}))
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); c.Run(runCtx) }()
	go func() { defer wg.Done(); ob.Run(runCtx) }()
	defer func() { stop(); wg.Wait() }()

	orders := []OrderPlaced{
		{Order: "o-1", Customer: "ada", Total: 1250},
		{Order: "o-2", Customer: "grace", Total: 990},
		{Order: "o-3", Customer: "ada", Total: 0}, // fails validation: rolled back
		{Order: "o-4", Customer: "ada", Total: 4200},
	}
	placed := 0
	for _, o := range orders {
		err := placeOrder(ctx, db, ob, schema, o)
		switch {
		case errors.Is(err, errInvalidOrder):
			fmt.Fprintf(out, "rejected %s: %v (rolled back, no event)\n", o.Order, err)
		case err != nil:
			return err
		default:
			placed++
			fmt.Fprintf(out, "placed %s for %s (%s)\n", o.Order, o.Customer, money(o.Total))
		}
	}
	// A charge counts once its transaction, with the inbox record, is committed: the
	// handler returning is not enough, so wait for what the database holds.
	var charges int
	for {
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM `+schema+`.charges`).Scan(&charges); err != nil {
			return fmt.Errorf("%d of %d orders charged: %w", charges, placed, err)
		}
		if charges >= placed {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d orders charged: %w", charges, placed, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	fmt.Fprint(out, b.report())
	fmt.Fprintf(out, "charges in the database: %d for %d orders\n", charges, placed)
	return nil
}

func createTables(ctx context.Context, db *sql.DB, schema string) error {
	for _, q := range []string{
		`CREATE SCHEMA IF NOT EXISTS ` + schema,
		`CREATE TABLE IF NOT EXISTS ` + schema + `.orders (id text PRIMARY KEY, customer text NOT NULL, total_cents int NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS ` + schema + `.charges (order_id text NOT NULL, customer text NOT NULL, total_cents int NOT NULL)`,
		// Each run starts afresh, so its output is the same every time.
		`TRUNCATE ` + schema + `.orders, ` + schema + `.charges`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("creating the example's tables: %w", err)
		}
	}
	return nil
}

var errInvalidOrder = errors.New("total must be positive")

// placeOrder is the order service: the order row and its event commit together.
func placeOrder(ctx context.Context, db *sql.DB, ob *outbox.Outbox, schema string, o OrderPlaced) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO `+schema+`.orders (id, customer, total_cents) VALUES ($1, $2, $3)`,
		o.Order, o.Customer, o.Total); err != nil {
		return err
	}
	if err := outbox.Publish(ctx, tx, ob, orderPlaced, o); err != nil {
		return err
	}
	if o.Total <= 0 {
		return errInvalidOrder // the deferred Rollback drops the order and its event
	}
	return tx.Commit()
}

// billing is the billing service: it charges each order once, through the inbox.
type billing struct {
	schema   string
	mu       sync.Mutex
	failOnce map[string]bool // orders whose first attempt fails after writing its charge
	lines    []string
}

func (b *billing) charge(ctx context.Context, tx *sql.Tx, m *pubsub.Message[OrderPlaced]) error {
	o := m.Payload
	if _, err := tx.ExecContext(ctx, `INSERT INTO `+b.schema+`.charges (order_id, customer, total_cents) VALUES ($1, $2, $3)`,
		o.Order, o.Customer, o.Total); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failOnce[o.Order] {
		delete(b.failOnce, o.Order)
		b.lines = append(b.lines, fmt.Sprintf("  %s: attempt %d failed: payment service timeout (charge rolled back)", o.Order, m.Attempt))
		return errors.New("payment service timeout")
	}
	b.lines = append(b.lines, fmt.Sprintf("  %s: charged to %s (%s), attempt %d", o.Order, o.Customer, money(o.Total), m.Attempt))
	return nil
}

// report lists what billing did, sorted by order.
func (b *billing) report() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	lines := slices.Clone(b.lines)
	slices.Sort(lines)
	return "billing:\n" + strings.Join(lines, "\n") + "\n"
}

func money(cents int) string { return fmt.Sprintf("%d.%02d", cents/100, cents%100) }
