package outbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/outbox"
)

// BenchmarkOutbox compares, on one in-process Kafka cluster and one PostgreSQL
// database, publishing through the outbox with plain publishing, and handling
// through the inbox with plain handling, and logs the ratios. b.N is the number of
// messages of each case; run it with a fixed count:
//
//	go test -run '^$' -bench Outbox -benchtime 20000x ./outbox
func BenchmarkOutbox(b *testing.B) {
	db, _ := newDB(b)
	db.SetMaxOpenConns(32)
	if _, err := db.Exec(`CREATE TABLE bench_orders (id bigserial PRIMARY KEY, customer text NOT NULL, n int NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	cluster := kafkatest.New(b)
	c, err := pubsub.Open(context.Background(), cluster.URL("partitions=6"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	clientCtx, stopClient := context.WithCancel(context.Background())
	clientDone := make(chan error, 1)
	go func() { clientDone <- c.Run(clientCtx) }()
	defer func() { stopClient(); <-clientDone }()
	<-c.Running()

	rates := map[string]float64{}
	measure := func(name string, f func(b *testing.B, n int) time.Duration) {
		b.Run(name, func(b *testing.B) {
			d := f(b, b.N)
			rate := float64(b.N) / d.Seconds()
			b.ReportMetric(rate, "msgs/s")
			b.ReportMetric(0, "ns/op")
			rates[name] = rate
		})
	}
	const writers = 8
	topicSeq := 0
	newTopic := func() pubsub.Topic[order] {
		topicSeq++
		return pubsub.NewTopic[order](kafkatest.Topic(fmt.Sprintf("bench.orders.%d", topicSeq)),
			pubsub.WithKey(func(o order) string { return o.Customer }))
	}
	ctx := context.Background()

	measure("publish/plain-Publish", func(b *testing.B, n int) time.Duration {
		t := newTopic()
		start := time.Now()
		parallel(writers, n, func(i int) error { return pubsub.Publish(ctx, c, t, benchOrder(i)) })
		return time.Since(start)
	})
	measure("publish/plain-insert+Publish", func(b *testing.B, n int) time.Duration {
		t := newTopic()
		start := time.Now()
		parallel(writers, n, func(i int) error {
			if _, err := db.Exec(`INSERT INTO bench_orders (customer, n) VALUES ($1, $2)`, benchOrder(i).Customer, i); err != nil {
				return err
			}
			return pubsub.Publish(ctx, c, t, benchOrder(i))
		})
		return time.Since(start)
	})
	measure("publish/outbox-tx+relay", func(b *testing.B, n int) time.Duration {
		t := newTopic()
		o := newBenchOutbox(b, db, c)
		start := time.Now()
		stop := runRelay(o)
		parallel(writers, n, func(i int) error {
			tx, err := db.Begin()
			if err != nil {
				return err
			}
			defer tx.Rollback()
			if _, err := tx.Exec(`INSERT INTO bench_orders (customer, n) VALUES ($1, $2)`, benchOrder(i).Customer, i); err != nil {
				return err
			}
			if err := outbox.Publish(ctx, tx, o, t, benchOrder(i)); err != nil {
				return err
			}
			return tx.Commit()
		})
		waitRelayed(b, o, n)
		d := time.Since(start)
		stop()
		return d
	})
	measure("publish/outbox-relay-only", func(b *testing.B, n int) time.Duration {
		t := newTopic()
		o := newBenchOutbox(b, db, c)
		parallel(writers, n, func(i int) error {
			tx, err := db.Begin()
			if err != nil {
				return err
			}
			defer tx.Rollback()
			if err := outbox.Publish(ctx, tx, o, t, benchOrder(i)); err != nil {
				return err
			}
			return tx.Commit()
		})
		start := time.Now()
		stop := runRelay(o)
		waitRelayed(b, o, n)
		d := time.Since(start)
		stop()
		return d
	})

	handleCase := func(name string, subscribe func(o *outbox.Outbox, t pubsub.Topic[order], handled *atomic.Int64) error) {
		measure(name, func(b *testing.B, n int) time.Duration {
			t := newTopic()
			vs := make([]order, n)
			for i := range vs {
				vs[i] = benchOrder(i)
			}
			if err := pubsub.PublishBatch(ctx, c, t, vs); err != nil {
				b.Fatal(err)
			}
			o := newBenchOutbox(b, db, c)
			var handled atomic.Int64
			if err := subscribe(o, t, &handled); err != nil {
				b.Fatal(err)
			}
			// Timed from the first message handled: the group's join is not handling.
			for handled.Load() == 0 {
				time.Sleep(100 * time.Microsecond)
			}
			start, first := time.Now(), handled.Load()
			for handled.Load() < int64(n) {
				time.Sleep(time.Millisecond)
			}
			return time.Duration(float64(time.Since(start)) * float64(n) / float64(int64(n)-first+1))
		})
	}
	handleCase("handle/plain-noop", func(o *outbox.Outbox, t pubsub.Topic[order], handled *atomic.Int64) error {
		return pubsub.Subscribe(c, t, "bench", func(ctx context.Context, m *pubsub.Message[order]) error {
			handled.Add(1)
			return nil
		})
	})
	handleCase("handle/plain-insert", func(o *outbox.Outbox, t pubsub.Topic[order], handled *atomic.Int64) error {
		return pubsub.Subscribe(c, t, "bench", func(ctx context.Context, m *pubsub.Message[order]) error {
			_, err := db.ExecContext(ctx, `INSERT INTO bench_orders (customer, n) VALUES ($1, $2)`, m.Payload.Customer, m.Payload.N)
			handled.Add(1)
			return err
		})
	})
	handleCase("handle/inbox-insert", func(o *outbox.Outbox, t pubsub.Topic[order], handled *atomic.Int64) error {
		return outbox.Subscribe(o, t, "bench", func(ctx context.Context, tx *sql.Tx, m *pubsub.Message[order]) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO bench_orders (customer, n) VALUES ($1, $2)`, m.Payload.Customer, m.Payload.N)
			handled.Add(1)
			return err
		})
	})

	ratio := func(a, base string) {
		if rates[a] > 0 && rates[base] > 0 {
			fmt.Printf("ratio %s / %s = %.2fx (%.0f vs %.0f msgs/s)\n", a, base, rates[a]/rates[base], rates[a], rates[base])
		}
	}
	ratio("publish/outbox-tx+relay", "publish/plain-Publish")
	ratio("publish/outbox-tx+relay", "publish/plain-insert+Publish")
	ratio("publish/outbox-relay-only", "publish/plain-Publish")
	ratio("handle/inbox-insert", "handle/plain-insert")
	ratio("handle/inbox-insert", "handle/plain-noop")
}

func benchOrder(i int) order { return order{Customer: fmt.Sprintf("c%d", i%64), N: i} }

// newBenchOutbox returns an Outbox with tables of its own, so each case starts empty.
func newBenchOutbox(b *testing.B, db *sql.DB, c *pubsub.Client) *outbox.Outbox {
	b.Helper()
	o, err := outbox.New(db, c, outbox.WithTablePrefix(fmt.Sprintf("b%d_", time.Now().UnixNano())))
	if err != nil {
		b.Fatal(err)
	}
	return o
}

// runRelay runs o's relay until the returned stop is called.
func runRelay(o *outbox.Outbox) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { o.Run(ctx); close(done) }()
	return func() { cancel(); <-done }
}

func waitRelayed(b *testing.B, o *outbox.Outbox, n int) {
	deadline := time.Now().Add(5 * time.Minute)
	for o.Stats().Relayed < int64(n) {
		if time.Now().After(deadline) {
			b.Fatalf("relayed %d of %d", o.Stats().Relayed, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// parallel calls f(0..n-1) from workers goroutines and panics on the first error.
func parallel(workers, n int, f func(i int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var first atomic.Value
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					first.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := first.Load(); err != nil {
		panic(err)
	}
}
