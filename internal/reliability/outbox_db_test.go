package reliability_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// envPostgres names the variable holding the DSN of the PostgreSQL server the outbox
// scenarios use; the default is the server on 127.0.0.1:5432, database test.
const envPostgres = "PUBSUB_TEST_POSTGRES"

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
	dsn := os.Getenv(envPostgres)
	if dsn == "" {
		dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
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
			t.Fatalf("PostgreSQL at %s is unreachable (set %s): %v", dsn, envPostgres, err)
		}
		t.Skipf("PostgreSQL at %s is unreachable (set %s): %v", dsn, envPostgres, err)
	}
	name := fmt.Sprintf("reliability_%x", rand.Uint64())
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)") })
	base, query, _ := strings.Cut(dsn, "?")
	own := base[:strings.LastIndex(base, "/")+1] + name
	if query != "" {
		own += "?" + query
	}
	db, err := sql.Open("pgx", own)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &database{db: db, dsn: own, name: name, admin: admin}
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
