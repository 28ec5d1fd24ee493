package kafka_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/pubsubtest"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

// retriable are produce errors a broker answers during leader changes and overload;
// the producer must retry them. REQUEST_TIMED_OUT and NOT_ENOUGH_REPLICAS_AFTER_APPEND
// are answered after kfake has written the batch, so a retry that is not idempotent
// would duplicate it.
var retriable = []*kerr.Error{
	kerr.NotLeaderForPartition,
	kerr.LeaderNotAvailable,
	kerr.RequestTimedOut,
	kerr.NotEnoughReplicas,
	kerr.NotEnoughReplicasAfterAppend,
}

// TestNoLossUnderProduceFaultsAndLeaderMoves: 10,000 messages flow from 8 publishers
// to one group while the cluster fails produce requests with retriable errors and
// moves partition leaders. Every Publish succeeds, every message is consumed, none is
// written twice.
func TestNoLossUnderProduceFaultsAndLeaderMoves(t *testing.T) {
	const total, publishers = 10_000, 8
	cluster := kafkatest.New(t)
	fake := cluster.RequireFake(t)
	tr := newTransport(t, cluster, kafka.Config{Partitions: 6, RetryBackoff: 20 * time.Millisecond})
	h := pubsubtest.NewOn(t, tr)
	h.Timeout = 2 * time.Minute
	topic := pubsub.NewTopic[order](kafkatest.Topic("flow"))

	seen := newTally()
	if err := pubsub.Subscribe(h.Client, topic, "g", seen.handle); err != nil {
		t.Fatal(err)
	}

	// Chaos: about one produce request in 100 fails with a retriable error, and the
	// partition leaders are shuffled every 50 ms, until the publishers are done.
	var injected atomic.Int64
	for _, e := range retriable {
		fake.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: e, Count: -1, When: func(kmsg.Request) bool {
			if rand.IntN(100) >= 1 {
				return false
			}
			injected.Add(1)
			return true
		}})
	}
	stop := make(chan struct{})
	var shuffles atomic.Int64
	var chaos sync.WaitGroup
	chaos.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				fake.ShufflePartitionLeaders()
				shuffles.Add(1)
			}
		}
	})

	publishAll(t, h.Client, topic, 0, total, publishers, 0)
	close(stop)
	chaos.Wait()
	missing, dup := seen.waitAll(total, h.Timeout)
	t.Logf("%d faults answered, %d leader shuffles; %d consumed, %d missing, %d redelivered", injected.Load(), shuffles.Load(), seen.distinct(), missing, dup)
	if injected.Load() == 0 || shuffles.Load() == 0 {
		t.Fatal("no fault was injected: the test proved nothing")
	}
	if missing > 0 {
		t.Fatalf("%d of %d messages lost", missing, total)
	}
	// Each message is written once (idempotent producer), so a second delivery can only
	// come from a consumer redelivery; with one steady member there is none to expect.
	if dup > 0 {
		t.Logf("%d duplicate deliveries (allowed by at-least-once)", dup)
	}
	written := countRecords(t, cluster, topic.Name())
	if written != total {
		t.Fatalf("the topic holds %d records for %d published messages: retries wrote duplicates or lost some", written, total)
	}
}

func newSaramaClient(t *testing.T, cluster *kafkatest.Cluster, tr *kafka.Transport) sarama.Client {
	t.Helper()
	c, err := sarama.NewClient(cluster.Addrs, tr.SaramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// countRecords sums the high-water marks of topic's partitions.
func countRecords(t *testing.T, cluster *kafkatest.Cluster, topic string) int64 {
	t.Helper()
	tr := newTransport(t, cluster, kafka.Config{})
	client := newSaramaClient(t, cluster, tr)
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, p := range parts {
		hw, err := client.GetOffset(topic, p, -1) // newest
		if err != nil {
			t.Fatal(err)
		}
		n += hw
	}
	return n
}

// TestNonRetriableProduceErrorFailsPublish: a produce error the broker says is final
// reaches Publish's caller at once, never a silent drop.
func TestNonRetriableProduceErrorFailsPublish(t *testing.T) {
	cluster := kafkatest.New(t)
	fake := cluster.RequireFake(t)
	tr := newTransport(t, cluster, kafka.Config{})
	topic := kafkatest.Topic("strict")
	if err := tr.Provision(context.Background(), topic); err != nil {
		t.Fatal(err)
	}
	fake.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: topic, Err: kerr.InvalidRecord})
	start := time.Now()
	err := tr.Publish(topic, message.NewMessage("1", []byte("x")))
	if err == nil {
		t.Fatal("Publish succeeded though the broker refused the record")
	}
	if !strings.Contains(err.Error(), topic) || !errors.Is(err, sarama.ErrInvalidRecord) {
		t.Errorf("error does not name the topic and the broker's reason: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a final error took %v to reach Publish", d)
	}
	// The next message goes through: one refused record does not wedge the producer.
	if err := tr.Publish(topic, message.NewMessage("2", []byte("y"))); err != nil {
		t.Fatalf("Publish after a refused record: %v", err)
	}
}

// TestTooLargeMessageFailsPublish: a message over max_message_bytes is refused by the
// producer with an error, before it reaches a broker.
func TestTooLargeMessageFailsPublish(t *testing.T) {
	cluster := kafkatest.New(t)
	tr := newTransport(t, cluster, kafka.Config{MaxMessageBytes: 1000})
	err := tr.Publish(kafkatest.Topic("big"), message.NewMessage("1", make([]byte, 2000)))
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("Publish of 2000 bytes with max_message_bytes=1000: %v", err)
	}
}

// TestClusterDownAtStart: Open against brokers that refuse connections fails with an
// error naming them, within a bounded time.
func TestClusterDownAtStart(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	u, _ := url.Parse("kafka://" + addr + "?dial_timeout=2s")
	start := time.Now()
	_, err = kafka.Open(context.Background(), u)
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("Open succeeded with no cluster")
	}
	if !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "cannot reach") {
		t.Errorf("error does not say which brokers it could not reach: %v", err)
	}
	if elapsed > 10*time.Second {
		t.Errorf("Open took %v to fail", elapsed)
	}
	t.Logf("after %v: %v", elapsed.Round(time.Millisecond), err)

	// A context that ends first bounds Open too, against a listener that accepts and
	// never answers, where sarama alone would wait for its read timeout.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	var held sync.Mutex
	var conns []net.Conn
	defer func() {
		held.Lock()
		defer held.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held.Lock()
			conns = append(conns, c)
			held.Unlock()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	u, _ = url.Parse("kafka://" + silent.Addr().String())
	start = time.Now()
	if _, err := kafka.Open(ctx, u); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Open with an expiring context: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Open ignored its context for %v", d)
	}
}
