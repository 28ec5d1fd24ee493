// Package kafkatest gives a test a Kafka-protocol cluster to talk to: by default an
// in-process three-broker cluster (franz-go's kfake) listening on 127.0.0.1, which the
// real sarama client reaches over TCP; or, when PUBSUB_TEST_KAFKA_BROKERS is set
// (host:port,host:port), that real cluster instead, so the same tests run against
// Apache Kafka.
//
// kfake keeps one log for all replicas: replication factors and min.insync.replicas
// are accepted and reported but not enforced, so tests must not assert on replica
// behaviour.
package kafkatest

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// EnvBrokers names the environment variable that points the tests at a real cluster.
const EnvBrokers = "PUBSUB_TEST_KAFKA_BROKERS"

// Brokers is how many brokers the in-process cluster has: three, so that topics can
// be created with the production replication factor.
const Brokers = 3

// Cluster is a cluster a test can use.
type Cluster struct {
	// Addrs are the bootstrap addresses.
	Addrs []string
	// Fake is the in-process cluster, for injecting faults; nil on a real cluster.
	Fake *kfake.Cluster
}

// New starts an in-process cluster closed when the test ends, or returns the real
// cluster named by PUBSUB_TEST_KAFKA_BROKERS. opts are extra kfake options, ignored on
// a real cluster.
func New(t testing.TB, opts ...kfake.Opt) *Cluster {
	t.Helper()
	if env := strings.TrimSpace(os.Getenv(EnvBrokers)); env != "" {
		return &Cluster{Addrs: strings.Split(env, ",")}
	}
	all := append([]kfake.Opt{kfake.NumBrokers(Brokers)}, opts...)
	fake, err := kfake.NewCluster(all...)
	if err != nil {
		t.Fatalf("kafkatest: starting kfake: %v", err)
	}
	t.Cleanup(fake.Close)
	return &Cluster{Addrs: fake.ListenAddrs(), Fake: fake}
}

// RequireFake skips a test that injects faults when it runs against a real cluster,
// where it cannot.
func (c *Cluster) RequireFake(t testing.TB) *kfake.Cluster {
	t.Helper()
	if c.Fake == nil {
		t.Skipf("injects faults into the in-process cluster; %s points at a real cluster", EnvBrokers)
	}
	return c.Fake
}

// URL returns the kafka:// URL of the cluster with the query params appended
// ("" for none), such as "replication_factor=1&partitions=1".
func (c *Cluster) URL(params string) string {
	u := "kafka://" + strings.Join(c.Addrs, ",")
	if params != "" {
		u += "?" + params
	}
	return u
}

// Topic returns base with a suffix no other run uses, so tests can be repeated on a
// real cluster, where topics, messages and committed offsets outlive a run.
func Topic(base string) string {
	return base + "." + strconv.FormatUint(rand.Uint64(), 36)
}

// RangeMember joins group as a franz-go consumer of topic that lists only the range
// balancer (as sarama and watermill-kafka do by default) and returns once it has
// fetched a record, so it is in the group and holds its partitions: topic must hold
// a record. Close leaves the group; the test's end closes it too.
func (c *Cluster) RangeMember(t testing.TB, topic, group string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.Balancers(kgo.RangeBalancer()), kgo.SessionTimeout(6*time.Second), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if fs := cl.PollFetches(ctx); fs.Err0() != nil {
		t.Fatalf("kafkatest: the range member of group %q did not join: %v", group, fs.Err0())
	}
	return cl
}
