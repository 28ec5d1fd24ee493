package main

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/pubsubkit/pubsub/internal/pgtest"
)

// TestReadingsStoredOnceBadOneDeadLettered runs the example on the memory transport
// against a database of its own: the good readings are stored once each, also after a
// whole batch came again, and the bad one is dead-lettered with its reason.
func TestReadingsStoredOnceBadOneDeadLettered(t *testing.T) {
	dsn := pgtest.New(t, "batch_example").DSN
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out strings.Builder
	if err := run(ctx, dsn, "memory://", "plant", &out); err != nil {
		t.Fatal(err)
	}
	want := `published 50 readings (r-17 has a negative value)
dead-lettered to plant.readings.storage.dlq: reading r-17: value -4.0 is negative
readings in the database: 49 rows, 49 distinct, the first batch redelivered after its commit and stored once
`
	if out.String() != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out.String(), want)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var bad, inbox int
	if err := db.QueryRow(`SELECT (SELECT count(*) FROM plant.readings WHERE value < 0), (SELECT count(*) FROM plant.inbox)`).Scan(&bad, &inbox); err != nil {
		t.Fatal(err)
	}
	if bad != 0 || inbox != 49 {
		t.Fatalf("%d negative readings stored, %d inbox records; want 0 and 49", bad, inbox)
	}
}
