package kafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/internal/testsuite"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/kafka"
	"github.com/pubsubkit/pubsub/transport/watermilladapter"
)

// newTransport opens a transport on cluster with cfg's Brokers filled in, closed when
// the test ends.
func newTransport(t testing.TB, cluster *kafkatest.Cluster, cfg kafka.Config) *kafka.Transport {
	t.Helper()
	cfg.Brokers = cluster.Addrs
	tr, err := kafka.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("kafka.New: %v", err)
	}
	t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return tr
}

// TestConformance runs the transport conformance suite, the same one the memory
// transport passes, on one cluster with the default (durable) configuration.
func TestConformance(t *testing.T) {
	cluster := kafkatest.New(t)
	testsuite.Run(t, testsuite.Harness{
		New: func(t *testing.T) transport.Transport {
			cfg := kafka.Config{Brokers: cluster.Addrs, NackDelay: 100 * time.Millisecond}
			tr, err := kafka.New(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			return tr
		},
		Timeout:    30 * time.Second,
		Partitions: kafka.DefaultPartitions,
	})
}

// TestWatermillPubSub runs Watermill's universal Pub/Sub suite with consumer groups.
// Every constructor call opens its own transport on one shared cluster (Persistent:
// instances see each other through the broker); it is closed when the test ends, not
// by the suite's Close of its publisher, after which the suite still reads from the
// subscriber. Topics get one partition so that the suite's order checks apply.
func TestWatermillPubSub(t *testing.T) {
	t.Parallel()
	runWatermillSuite(t, "test", tests.Features{
		ConsumerGroups:  true,
		GuaranteedOrder: true,
		Persistent:      true,
	})
}

// TestWatermillPubSubNoGroup runs the suite on subscriptions without a group, which
// each read the topic from its oldest message, as watermill-kafka's own suite does.
func TestWatermillPubSubNoGroup(t *testing.T) {
	t.Parallel()
	runWatermillSuite(t, "", tests.Features{
		GuaranteedOrder:                  true,
		Persistent:                       true,
		NewSubscriberReceivesOldMessages: true,
	})
}

func runWatermillSuite(t *testing.T, group string, features tests.Features) {
	cluster := kafkatest.New(t)
	open := func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		// The suite ends subscriptions with messages it never acks; a short drain
		// keeps it from waiting for them.
		tr := newTransport(t, cluster, kafka.Config{Partitions: 1, NackDelay: 5 * time.Millisecond, Drain: 200 * time.Millisecond})
		return testsuite.KeepOpen(tr), watermilladapter.NewSubscriber(tr, transport.SubscribeOptions{Group: group})
	}
	var groups tests.ConsumerGroupPubSubConstructor
	if features.ConsumerGroups {
		groups = open
	}
	tests.TestPubSub(t, features, func(t *testing.T) (message.Publisher, message.Subscriber) { return open(t, group) }, groups)
}
