package kafka_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

// rawClient is a plain franz-go client on cluster, closed when the test ends.
func rawClient(t testing.TB, cluster *kafkatest.Cluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cluster.Addrs...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produceTo writes n records with value "v<i>" to partition p of topic.
func produceTo(t testing.TB, cl *kgo.Client, topic string, p int32, n int) {
	t.Helper()
	for i := range n {
		r := &kgo.Record{Topic: topic, Partition: p, Value: []byte("v" + strconv.Itoa(i))}
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatalf("producing to %s/%d: %v", topic, p, err)
		}
	}
}

func TestTopicsListsWhatStartsWithPrefixSorted(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.New(t)
	tr := newTransport(t, cluster, kafka.Config{})
	ctx := context.Background()
	prefix := kafkatest.Topic("lister") + "."
	want := []string{prefix + "a", prefix + "b.retry.1", prefix + "c"}
	// Created in another order than sorted; each is asked for at once after it is
	// made, so a listing answered from a metadata cache would miss it.
	for _, name := range []string{want[2], want[0], want[1]} {
		if err := tr.Provision(ctx, name); err != nil {
			t.Fatal(err)
		}
		got, err := tr.Topics(ctx, prefix)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(got, name) {
			t.Fatalf("Topics(%q) = %q just after %q was created: missing", prefix, got, name)
		}
	}
	if err := tr.Provision(ctx, "other."+prefix); err != nil {
		t.Fatal(err)
	}
	got, err := tr.Topics(ctx, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Topics(%q) = %q, want %q", prefix, got, want)
	}

	// A group commit creates __consumer_offsets on a real cluster; internal topics
	// are never listed.
	all, err := tr.Topics(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range all {
		if len(name) >= 2 && name[:2] == "__" {
			t.Errorf("Topics(\"\") lists the internal topic %q", name)
		}
	}
	if !slices.IsSorted(all) || !slices.Contains(all, "other."+prefix) {
		t.Errorf("Topics(\"\") = %q: want every topic, sorted", all)
	}
}

func TestGroupLag(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.New(t)
	tr := newTransport(t, cluster, kafka.Config{})
	ctx := context.Background()
	topic, group := kafkatest.Topic("lag"), kafkatest.Topic("group")
	if err := tr.Provision(ctx, topic); err != nil {
		t.Fatal(err)
	}
	cl := rawClient(t, cluster, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produceTo(t, cl, topic, 0, 5)
	produceTo(t, cl, topic, 1, 2)

	lag, err := tr.GroupLag(ctx, topic, group)
	if err != nil {
		t.Fatal(err)
	}
	want := []transport.PartitionStats{{Partition: 0, Committed: -1, End: 5}, {Partition: 1, Committed: -1, End: 2}, {Partition: 2, Committed: -1, End: 0}}
	if !slices.Equal(lag, want) {
		t.Fatalf("GroupLag of a group that never committed = %+v, want %+v", lag, want)
	}

	var offsets kadm.Offsets
	offsets.AddOffset(topic, 0, 3, -1)
	offsets.AddOffset(topic, 1, 2, -1)
	if resp, err := kadm.NewClient(cl).CommitOffsets(ctx, group, offsets); err != nil || resp.Error() != nil {
		t.Fatalf("committing: %v %v", err, resp.Error())
	}
	lag, err = tr.GroupLag(ctx, topic, group)
	if err != nil {
		t.Fatal(err)
	}
	want = []transport.PartitionStats{{Partition: 0, Committed: 3, End: 5}, {Partition: 1, Committed: 2, End: 2}, {Partition: 2, Committed: -1, End: 0}}
	if !slices.Equal(lag, want) {
		t.Fatalf("GroupLag after commits = %+v, want %+v", lag, want)
	}
	if lag[0].Lag() != 2 || lag[1].Lag() != 0 || lag[2].Lag() != -1 {
		t.Errorf("Lag() = %d, %d, %d; want 2, 0, -1", lag[0].Lag(), lag[1].Lag(), lag[2].Lag())
	}

	if _, err := tr.GroupLag(ctx, kafkatest.Topic("missing"), group); !errors.Is(err, transport.ErrUnknownTopic) {
		t.Errorf("GroupLag of a missing topic: %v, want ErrUnknownTopic", err)
	}
}

// TestGroupLagEndIsLastStable: under read_committed a transaction still open is not
// lag: End is the last stable offset, the offset of the open transaction's first
// record; read_uncommitted counts it.
func TestGroupLagEndIsLastStable(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.New(t)
	committed := newTransport(t, cluster, kafka.Config{})
	uncommitted := newTransport(t, cluster, kafka.Config{Isolation: kafka.ReadUncommitted})
	ctx := context.Background()
	topic := kafkatest.Topic("lso")
	if err := committed.Provision(ctx, topic); err != nil {
		t.Fatal(err)
	}
	produceTo(t, rawClient(t, cluster, kgo.RecordPartitioner(kgo.ManualPartitioner())), topic, 0, 2)
	txn := rawClient(t, cluster, kgo.TransactionalID(kafkatest.Topic("txn")), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.TransactionTimeout(time.Minute))
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produceTo(t, txn, topic, 0, 3) // open, never ended
	for _, c := range []struct {
		tr   *kafka.Transport
		name string
		end  int64
	}{{committed, "read_committed", 2}, {uncommitted, "read_uncommitted", 5}} {
		lag, err := c.tr.GroupLag(ctx, topic, "g")
		if err != nil {
			t.Fatal(err)
		}
		if lag[0].End != c.end {
			t.Errorf("%s: End of partition 0 = %d, want %d", c.name, lag[0].End, c.end)
		}
	}
	if err := txn.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
}

// TestCapabilities: the Kafka transport declares everything it does: groups, order
// per key, per-key concurrency, retention, persistence and keys choosing partitions.
func TestCapabilities(t *testing.T) {
	t.Parallel()
	tr := newTransport(t, kafkatest.New(t), kafka.Config{})
	want := transport.Capabilities{MessagingSystem: "kafka", ConsumerGroups: true, Ordered: true, Concurrency: true,
		Retains: true, Persistent: true, PartitionKeys: true}
	if got := tr.Capabilities(); got != want {
		t.Fatalf("Capabilities() = %+v, want %+v", got, want)
	}
	var _ transport.Reader = tr
	var _ transport.TopicLister = tr
	var _ transport.GroupLagger = tr
	var _ transport.AsyncPublisher = tr
	var _ transport.Provisioner = tr
}
