package reliability_test

import (
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"

	"github.com/pubsubkit/pubsub/internal/pgtest"
)

// database is a PostgreSQL database of one test.
type database struct {
	db    *sql.DB // opened with pgx's stdlib driver
	dsn   string
	name  string
	admin *sql.DB // a connection to the server's test database, outside db
}

// newDatabase creates a database for the test, dropped when it ends. Without a
// reachable server the test is skipped, or fails with CI=true.
func newDatabase(t *testing.T) *database {
	t.Helper()
	d := pgtest.New(t, "reliability")
	return &database{db: d.DB, dsn: d.DSN, name: d.Name, admin: d.Admin}
}

// terminate ends every server process connected to the database (the relay's and
// the writers' connections), as a PostgreSQL restart would, without disturbing the
// other databases of the server. It returns how many it ended.
func (d *database) terminate(t *testing.T) int {
	t.Helper()
	var n int
	err := d.admin.QueryRow(`SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = $1 AND pid <> pg_backend_pid()) AS ended`, d.name).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// count returns the result of a count query.
func (d *database) count(t *testing.T, query string) int {
	t.Helper()
	var n int
	if err := d.db.QueryRow(query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

var buildOutboxPrograms = sync.OnceValue(func() error {
	out, err := exec.Command("go", "build", "-o", programs+string(os.PathSeparator), "./outboxproducer", "./inboxconsumer").CombinedOutput()
	if err != nil {
		return fmt.Errorf("building outboxproducer and inboxconsumer: %v\n%s", err, out)
	}
	return nil
})

// outboxPrograms builds the outbox scenarios' programs once, into programs.
func outboxPrograms(t *testing.T) {
	t.Helper()
	if err := buildOutboxPrograms(); err != nil {
		t.Fatal(err)
	}
}
