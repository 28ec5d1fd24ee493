package kafka_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

// TestReadCommittedSkipsAbortedTransactions: a transactional franz-go producer
// commits three transactions and aborts two between them; our subscriber (default
// isolation) receives exactly the committed records, in order, and none of the
// aborted ones, though they sit in the log between them.
func TestReadCommittedSkipsAbortedTransactions(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.New(t)
	topic := kafkatest.Topic("txn")
	tr := newTransport(t, cluster, kafka.Config{Partitions: 1})
	if err := tr.Provision(context.Background(), topic); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.Addrs...), kgo.TransactionalID(kafkatest.Topic("txid")),
		kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var want []string
	for txn, commit := range []bool{true, false, true, false, true} {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			v := "t" + strconv.Itoa(txn) + "-" + strconv.Itoa(i)
			if !commit {
				v = "aborted-" + v
			}
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			if commit {
				want = append(want, v)
			}
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatalf("ending transaction %d (commit %v): %v", txn, commit, err)
		}
	}
	sub := subscribe(t, tr, topic, transport.SubscribeOptions{Group: "rc"})
	got := receive(t, sub, len(want), 20*time.Second)
	for i, m := range got {
		if string(m.Payload) != want[i] {
			t.Fatalf("received %s, want the committed records in order: %v", payloads(got), want)
		}
	}
	select {
	case m := <-sub.Messages():
		t.Errorf("received %q after every committed record", m.Payload)
		m.Ack()
	case <-time.After(500 * time.Millisecond):
	}
}
