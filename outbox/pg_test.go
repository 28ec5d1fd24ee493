package outbox_test

import (
	"database/sql"
	"testing"

	"github.com/pubsubkit/pubsub/internal/pgtest"
)

// newDB creates a database of its own for the test, dropped when it ends, and returns
// it opened with pgx's stdlib driver and its DSN. Without a reachable server the test
// is skipped, or fails with CI=true.
func newDB(t testing.TB) (*sql.DB, string) {
	t.Helper()
	d := pgtest.New(t, "outbox_test")
	return d.DB, d.DSN
}
