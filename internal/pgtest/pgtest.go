// Package pgtest gives a test a PostgreSQL database of its own on the server the
// tests share (127.0.0.1:5432, or the DSN in $PUBSUB_TEST_POSTGRES), dropped when the
// test ends.
package pgtest

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver

	"github.com/pubsubkit/pubsub/internal/testenv"
)

// EnvDSN names the variable holding the DSN of the server the tests use.
const EnvDSN = "PUBSUB_TEST_POSTGRES"

// DefaultDSN is the server on this machine and in CI: trust auth, database test.
const DefaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Database is a test's own database.
type Database struct {
	DB    *sql.DB // opened with pgx's stdlib driver
	DSN   string  // the database's DSN, for other processes
	Name  string
	Admin *sql.DB // a connection to the server's own test database, outside DB
}

// New creates a database named prefix_<random> for t, dropped (with its
// connections) when t ends. Without a reachable server the test is skipped, or
// fails with CI=true.
func New(t testing.TB, prefix string) *Database {
	t.Helper()
	dsn := os.Getenv(EnvDSN)
	if dsn == "" {
		dsn = DefaultDSN
	}
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		testenv.Missing(t, "PostgreSQL at %s is unreachable (set %s): %v", dsn, EnvDSN, err)
	}
	name := fmt.Sprintf("%s_%x", prefix, rand.Uint64())
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)") })
	own := WithDatabase(dsn, name)
	db, err := sql.Open("pgx", own)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &Database{DB: db, DSN: own, Name: name, Admin: admin}
}

// WithDatabase returns dsn naming database name instead.
func WithDatabase(dsn, name string) string {
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
