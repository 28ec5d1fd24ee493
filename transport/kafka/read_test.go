package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

func TestReadAllOfAMissingTopicIsUnknownTopic(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.New(t)
	tr := newTransport(t, cluster, kafka.Config{})
	msgs, err := tr.ReadAll(context.Background(), kafkatest.Topic("missing"))
	if !errors.Is(err, transport.ErrUnknownTopic) || msgs != nil {
		t.Fatalf("ReadAll of a missing topic = %d messages, %v; want none and ErrUnknownTopic", len(msgs), err)
	}
	empty := kafkatest.Topic("empty")
	if err := tr.Provision(context.Background(), empty); err != nil {
		t.Fatal(err)
	}
	if msgs, err := tr.ReadAll(context.Background(), empty); err != nil || len(msgs) != 0 {
		t.Fatalf("ReadAll of an empty topic = %d messages, %v; want none and no error", len(msgs), err)
	}
}

// TestReadAllDoesNotWaitForAnOpenTransaction: under read_committed ReadAll stops at
// the last stable offset, so the records of a transaction still open are neither
// read nor waited for.
func TestReadAllDoesNotWaitForAnOpenTransaction(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.New(t)
	tr := newTransport(t, cluster, kafka.Config{Partitions: 1})
	topic := kafkatest.Topic("txn")
	if err := tr.Provision(context.Background(), topic); err != nil {
		t.Fatal(err)
	}
	produceTo(t, rawClient(t, cluster), topic, 0, 2)
	txn := rawClient(t, cluster, kgo.TransactionalID(kafkatest.Topic("txn")), kgo.TransactionTimeout(time.Minute))
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produceTo(t, txn, topic, 0, 3)
	defer txn.EndTransaction(context.Background(), kgo.TryAbort) //nolint:errcheck // the test is over

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs, err := tr.ReadAll(ctx, topic)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("ReadAll beside an open transaction = %d messages, %v; want the 2 committed ones", len(msgs), err)
	}
}

// TestReadAllTenThousandWithinASecond: the client's DeadLetters reads a dead-letter
// topic with ReadAll; 10,000 letters of about 300 bytes on 3 partitions are read, all
// of them, each partition oldest first, within a second.
func TestReadAllTenThousandWithinASecond(t *testing.T) {
	cluster := kafkatest.New(t)
	tr := newTransport(t, cluster, kafka.Config{})
	ctx := context.Background()
	topic := kafkatest.Topic("letters")
	const n = 10_000
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for i := range n {
		m := message.NewMessage(fmt.Sprintf("id-%05d", i), []byte(fmt.Sprintf(`{"order":%d,"note":"%s"}`, i, strings.Repeat("x", 150))))
		m.Metadata.Set(metadata.Key, fmt.Sprint("key-", i%97))
		m.Metadata.Set(metadata.DeadLetterReason, "handler failed: timeout")
		m.Metadata.Set(metadata.DeadLetterTopic, "orders")
		wg.Add(1)
		tr.PublishAsync(ctx, topic, m, func(err error) {
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			wg.Done()
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}

	var worst time.Duration
	for run := range 3 {
		start := time.Now()
		msgs, err := tr.ReadAll(ctx, topic)
		took := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != n {
			t.Fatalf("ReadAll returned %d messages, want %d", len(msgs), n)
		}
		seen := make(map[string]bool, n)
		last := map[int32]int64{}
		for _, m := range msgs {
			seen[m.UUID] = true
			p, ok := transport.PositionFrom(m.Context())
			if !ok {
				t.Fatal("a message without its Position")
			}
			if prev, ok := last[p.Partition]; ok && p.Offset <= prev {
				t.Fatalf("partition %d: offset %d after %d", p.Partition, p.Offset, prev)
			}
			last[p.Partition] = p.Offset
		}
		if len(seen) != n || len(last) != kafka.DefaultPartitions {
			t.Fatalf("ReadAll returned %d distinct messages from %d partitions, want %d from %d", len(seen), len(last), n, kafka.DefaultPartitions)
		}
		t.Logf("run %d: ReadAll of %d messages took %s", run, n, took)
		worst = max(worst, took)
	}
	if worst > time.Second {
		t.Fatalf("ReadAll of %d messages took up to %s, want within 1s", n, worst)
	}
}
