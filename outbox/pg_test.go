package outbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// envDSN names the variable holding the DSN of the PostgreSQL server the tests use.
const envDSN = "PUBSUB_TEST_POSTGRES"

const defaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// newDB creates a database of its own for the test, dropped when it ends, and returns
// it opened with pgx's stdlib driver and its DSN. Without a reachable server the test
// is skipped, or fails with CI=true.
func newDB(t testing.TB) (*sql.DB, string) {
	t.Helper()
	dsn := os.Getenv(envDSN)
	if dsn == "" {
		dsn = defaultDSN
	}
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL at %s is unreachable (set %s): %v", dsn, envDSN, err)
		}
		t.Skipf("PostgreSQL at %s is unreachable (set %s): %v", dsn, envDSN, err)
	}
	name := fmt.Sprintf("outbox_test_%x", rand.Uint64())
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
	})
	own := withDatabase(dsn, name)
	db, err := sql.Open("pgx", own)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, own
}

// withDatabase returns dsn naming database name instead.
func withDatabase(dsn, name string) string {
	base, query, _ := strings.Cut(dsn, "?")
	i := strings.LastIndex(base, "/")
	if i < len("postgres://") {
		base += "/"
		i = len(base) - 1
	}
	out := base[:i+1] + name
	if query != "" {
		out += "?" + query
	}
	return out
}
