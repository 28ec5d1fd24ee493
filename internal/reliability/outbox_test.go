package reliability_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/internal/reliability"
	"github.com/pubsubkit/pubsub/outbox"
)

// outboxScale multiplies the outbox scenarios' counts: PUBSUB_OUTBOX_SCALE=2 doubles
// them.
func outboxScale(t *testing.T, n int) int {
	if s := os.Getenv("PUBSUB_OUTBOX_SCALE"); s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f <= 0 {
			t.Fatalf("PUBSUB_OUTBOX_SCALE=%q is not a positive number", s)
		}
		return max(1, int(float64(n)*f))
	}
	return n
}

// outboxCluster starts a cluster whose groups accept the short sessions of the
// scenarios, and returns its URL.
func outboxCluster(t *testing.T) string {
	cluster := kafkatest.New(t, kfake.GroupMinSessionTimeout(time.Second))
	return cluster.URL("partitions=6&session_timeout=3s&rebalance_timeout=1500ms")
}

// events consumes topic from its start in a group of its own and counts the events
// of each order, until until says it has them all or timeout.
func events(t *testing.T, url, topic string, timeout time.Duration, until func(map[int64]int) bool) map[int64]int {
	t.Helper()
	c, err := pubsub.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := map[int64]int{}
	err = pubsub.Subscribe(c, reliability.OrderTopic(topic), kafkatest.Topic("count"), func(_ context.Context, m *pubsub.Message[reliability.OrderPlaced]) error {
		mu.Lock()
		got[m.Payload.Order]++
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done; c.Close() }()
	deadline := time.Now().Add(timeout)
	for {
		mu.Lock()
		ok := until(got)
		snapshot := make(map[int64]int, len(got))
		for k, v := range got {
			snapshot[k] = v
		}
		mu.Unlock()
		if ok || time.Now().After(deadline) {
			return snapshot
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// committedOrders returns the ids of the orders table.
func committedOrders(t *testing.T, db *sql.DB) map[int64]bool {
	t.Helper()
	rows, err := db.Query(`SELECT id FROM orders`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	ids := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids[id] = true
	}
	return ids
}

// compare reports lost events (committed orders without one), events of orders that
// were never committed, and duplicates.
func compare(committed map[int64]bool, got map[int64]int) (lost, uncommitted, duplicates int) {
	for id := range committed {
		if got[id] == 0 {
			lost++
		}
	}
	for id, n := range got {
		if !committed[id] {
			uncommitted++
		}
		duplicates += n - 1
	}
	return lost, uncommitted, duplicates
}

// TestOutboxProducerKilled kills the producer program with SIGKILL six times while it
// writes orders and their events in one transaction each (and relays them): every
// committed order has its event, and no order that was rolled back (or cut short by
// the kill) has one.
func TestOutboxProducerKilled(t *testing.T) {
	outboxPrograms(t)
	d := newDatabase(t)
	url := outboxCluster(t)
	topic := kafkatest.Topic("outbox.orders")
	n := outboxScale(t, 3000)
	start0 := time.Now()
	kills := 0
	for {
		p := start(t, "outboxproducer", "-url", url, "-dsn", d.dsn, "-topic", topic, "-n", fmt.Sprint(n))
		var exited bool
		if kills < 6 {
			select {
			case err := <-p.done:
				if err != nil {
					t.Fatalf("outboxproducer: %v\n%s", err, p.out)
				}
				exited = true
			case <-time.After(time.Duration(400+rand.IntN(800)) * time.Millisecond):
				p.signal(t, syscall.SIGKILL)
				p.wait(t, 10*time.Second)
				kills++
				continue
			}
		}
		if !exited {
			if err := p.wait(t, 2*time.Minute); err != nil {
				t.Fatalf("outboxproducer: %v\n%s", err, p.out)
			}
		}
		break
	}
	if kills < 6 {
		t.Fatalf("the producer finished after %d kills; the scenario needs 6 (raise PUBSUB_OUTBOX_SCALE)", kills)
	}
	committed := committedOrders(t, d.db)
	wantCommitted := n - n/5
	if len(committed) != wantCommitted {
		t.Fatalf("%d orders committed, want %d", len(committed), wantCommitted)
	}
	got := events(t, url, topic, time.Minute, func(got map[int64]int) bool {
		lost, _, _ := compare(committed, got)
		return lost == 0
	})
	lost, uncommitted, duplicates := compare(committed, got)
	t.Logf("%d orders, %d committed, %d kills in %s: %d events lost, %d events of uncommitted orders, %d duplicate events",
		n, len(committed), kills, time.Since(start0).Round(time.Millisecond), lost, uncommitted, duplicates)
	if lost != 0 || uncommitted != 0 {
		t.Fatalf("%d committed orders lost their event, %d uncommitted orders have one", lost, uncommitted)
	}
}

// TestInboxConsumerKilled kills a consumer six times while it applies a side effect
// (a row) per message, over 50,000 messages: through the inbox every message's
// effect is applied exactly once; without it, the thousands redone are counted.
func TestInboxConsumerKilled(t *testing.T) {
	outboxPrograms(t)
	url := outboxCluster(t)
	topic := kafkatest.Topic("outbox.billing")
	n := outboxScale(t, 50_000)
	publishOrders(t, url, topic, n)
	for _, mode := range []string{"inbox", "plain"} {
		t.Run(mode, func(t *testing.T) {
			d := newDatabase(t)
			args := []string{"-url", url, "-dsn", d.dsn, "-topic", topic, "-group", "billing-" + mode}
			if mode == "inbox" {
				args = append(args, "-inbox")
			}
			start0 := time.Now()
			effects := func() int {
				var c int
				if err := d.db.QueryRow(`SELECT count(*) FROM effects`).Scan(&c); err != nil {
					return 0 // not created yet
				}
				return c
			}
			step := n / 7
			for kill := 1; kill <= 6; kill++ {
				p := start(t, "inboxconsumer", args...)
				deadline := time.Now().Add(time.Minute)
				for effects() < kill*step {
					if time.Now().After(deadline) {
						t.Fatalf("kill %d: %d effects after a minute, want %d", kill, effects(), kill*step)
					}
					select {
					case err := <-p.done:
						t.Fatalf("inboxconsumer exited: %v\n%s", err, p.out)
					case <-time.After(20 * time.Millisecond):
					}
				}
				p.signal(t, syscall.SIGKILL)
				p.wait(t, 10*time.Second)
			}
			p := start(t, "inboxconsumer", args...)
			deadline := time.Now().Add(2 * time.Minute)
			for d.count(t, `SELECT count(DISTINCT order_id) FROM effects`) < n {
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d orders have an effect after 2 minutes", d.count(t, `SELECT count(DISTINCT order_id) FROM effects`), n)
				}
				time.Sleep(100 * time.Millisecond)
			}
			time.Sleep(500 * time.Millisecond) // redeliveries in flight land
			p.signal(t, syscall.SIGTERM)
			p.wait(t, 30*time.Second)
			total := d.count(t, `SELECT count(*) FROM effects`)
			distinct := d.count(t, `SELECT count(DISTINCT order_id) FROM effects`)
			t.Logf("%s: %d messages, 6 kills, %s: %d effects applied for %d orders, %d redone",
				mode, n, time.Since(start0).Round(time.Millisecond), total, distinct, total-distinct)
			if distinct != n {
				t.Fatalf("%d orders have an effect, want %d", distinct, n)
			}
			if mode == "inbox" && total != n {
				t.Fatalf("through the inbox %d effects were applied for %d messages: %d redone", total, n, total-n)
			}
		})
	}
}

// publishOrders publishes orders 1..n to topic.
func publishOrders(t *testing.T, url, topic string, n int) {
	t.Helper()
	ctx := context.Background()
	c, err := pubsub.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tp := reliability.OrderTopic(topic)
	const chunk = 5000
	for first := 1; first <= n; first += chunk {
		var vs []reliability.OrderPlaced
		for id := first; id < first+chunk && id <= n; id++ {
			vs = append(vs, reliability.OrderPlaced{Order: int64(id), Customer: reliability.Customer(int64(id))})
		}
		if err := pubsub.PublishBatch(ctx, c, tp, vs); err != nil {
			t.Fatal(err)
		}
	}
}

// restartPostgres restarts the PostgreSQL server (PUBSUB_PG_RESTART=1 only: the
// server is shared with every other test of the run).
func restartPostgres(t *testing.T) {
	t.Helper()
	versions, err := os.ReadDir("/etc/postgresql")
	if err != nil || len(versions) == 0 {
		t.Fatalf("PUBSUB_PG_RESTART needs a Debian PostgreSQL cluster in /etc/postgresql: %v", err)
	}
	out, err := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", versions[0].Name(), "main", "restart").CombinedOutput()
	if err != nil {
		t.Fatalf("restarting PostgreSQL: %v\n%s", err, out)
	}
}

// TestOutboxRelayAcrossDatabaseRestarts ends every PostgreSQL connection of the
// scenario's database (pg_terminate_backend: what a restart does to the relay and
// the writers, without restarting the server other tests use) five times while
// orders are written and relayed: the relay reconnects and resumes, every committed
// order has its event. With PUBSUB_PG_RESTART=1 the third round restarts the whole
// server instead.
func TestOutboxRelayAcrossDatabaseRestarts(t *testing.T) {
	d := newDatabase(t)
	url := outboxCluster(t)
	topic := reliability.OrderTopic(kafkatest.Topic("outbox.restart"))
	n := outboxScale(t, 5000)
	ctx := context.Background()
	c, err := pubsub.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := d.db.Exec(`CREATE TABLE orders (id bigint PRIMARY KEY, customer text NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	o, err := outbox.New(d.db, c, outbox.WithPollInterval(100*time.Millisecond), outbox.WithBatchSize(200))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	relayDone := make(chan error, 1)
	go func() { relayDone <- o.Run(runCtx) }()
	defer func() { stop(); <-relayDone }()

	writeDone := make(chan error, 1)
	var retries int
	go func() {
		for id := int64(1); id <= int64(n); id++ {
			for {
				err := writeOrder(ctx, d.db, o, topic, id)
				if err == nil {
					break
				}
				retries++
				if retries > 10_000 {
					writeDone <- fmt.Errorf("order %d: %w", id, err)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		writeDone <- nil
	}()
	terminated, restarted := 0, false
	for round := range 5 {
		time.Sleep(time.Duration(300+rand.IntN(400)) * time.Millisecond)
		if round == 2 && os.Getenv("PUBSUB_PG_RESTART") == "1" {
			restartPostgres(t) // the whole server: stopped, then started again
			restarted = true
			continue
		}
		terminated += d.terminate(t)
	}
	if err := <-writeDone; err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		pending, err := o.Pending(ctx)
		if err == nil && pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox still holds %d messages (%v) a minute after the last write", pending, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	committed := committedOrders(t, d.db)
	got := events(t, url, topic.Name(), time.Minute, func(got map[int64]int) bool {
		lost, _, _ := compare(committed, got)
		return lost == 0
	})
	lost, uncommitted, duplicates := compare(committed, got)
	t.Logf("%d orders, %d connections terminated in 5 rounds (server restarted in one: %v), %d writes retried: %d events lost, %d of uncommitted orders, %d duplicates, %d relayed",
		len(committed), terminated, restarted, retries, lost, uncommitted, duplicates, o.Stats().Relayed)
	if len(committed) != n || lost != 0 || uncommitted != 0 {
		t.Fatalf("%d of %d orders committed, %d events lost, %d of uncommitted orders", len(committed), n, lost, uncommitted)
	}
	if terminated == 0 {
		t.Fatal("no connection was terminated: the scenario proved nothing")
	}
}

// writeOrder writes order id and its event in one transaction; an order already
// committed (by an attempt whose commit answer was lost) is left alone.
func writeOrder(ctx context.Context, db *sql.DB, o *outbox.Outbox, topic pubsub.Topic[reliability.OrderPlaced], id int64) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `INSERT INTO orders (id, customer) VALUES ($1, $2) ON CONFLICT DO NOTHING`, id, reliability.Customer(id))
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return err
	}
	if err := outbox.Publish(ctx, tx, o, topic, reliability.OrderPlaced{Order: id, Customer: reliability.Customer(id)}); err != nil {
		return err
	}
	return tx.Commit()
}
