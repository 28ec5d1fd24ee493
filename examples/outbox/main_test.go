package main

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/pubsubkit/pubsub/internal/pgtest"
)

// testDSN creates a database for the test, dropped when it ends, and returns its DSN.
// Without a reachable server the test is skipped, or fails with CI=true.
func testDSN(t *testing.T) string {
	t.Helper()
	return pgtest.New(t, "outbox_example").DSN
}

func TestOrderServiceAndBilling(t *testing.T) {
	dsn := testDSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out strings.Builder
	if err := run(ctx, dsn, "memory://", "shop", &out); err != nil {
		t.Fatal(err)
	}
	want := `placed o-1 for ada (12.50)
placed o-2 for grace (9.90)
rejected o-3: total must be positive (rolled back, no event)
placed o-4 for ada (42.00)
billing:
  o-1: charged to ada (12.50), attempt 1
  o-2: attempt 1 failed: payment service timeout (charge rolled back)
  o-2: charged to grace (9.90), attempt 2
  o-4: charged to ada (42.00), attempt 1
charges in the database: 3 for 3 orders
`
	if out.String() != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out.String(), want)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var orders, pending, handled int
	if err := db.QueryRow(`SELECT (SELECT count(*) FROM shop.orders), (SELECT count(*) FROM shop.pubsub_outbox), (SELECT count(*) FROM shop.pubsub_inbox)`).Scan(&orders, &pending, &handled); err != nil {
		t.Fatal(err)
	}
	if orders != 3 || pending != 0 || handled != 3 {
		t.Fatalf("%d orders, %d messages left in the outbox, %d inbox records; want 3, 0, 3", orders, pending, handled)
	}
}
