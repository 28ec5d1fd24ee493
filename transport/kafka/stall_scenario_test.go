package kafka_test

import (
	"testing"
	"time"

	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

// TestFullLaneDoesNotWaitForIdleSibling: two partitions led by one broker, only one
// with messages; its lane fills (prefetch 4) again and again, so its fetching is
// paused and resumed many times while its idle sibling's fetch waits on the broker
// for data. No message waits more than 2.5 s (half the 5 s long poll that stalled
// it before): a resumed partition is fetched when the sibling's fetch returns, which
// the broker holds for at most the fetch wait.
func TestFullLaneDoesNotWaitForIdleSibling(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.New(t)
	fake := cluster.RequireFake(t)
	topic := kafkatest.Topic("stall")
	tr := newTransport(t, cluster, kafka.Config{Partitions: 2, Prefetch: 4, FetchBytes: 64})
	key := "a"
	for javaPartition(key, 2) != 0 {
		key += "a"
	}
	if err := tr.Provision(t.Context(), topic); err != nil {
		t.Fatal(err)
	}
	if err := fake.MoveTopicPartition(topic, 1, fake.LeaderFor(topic, 0)); err != nil {
		t.Fatal(err)
	}
	const n = 200
	for _, m := range keyed(n, func(int) string { return key }) {
		if err := tr.Publish(topic, m); err != nil { // one batch each
			t.Fatal(err)
		}
	}
	sub := subscribe(t, tr, topic, transport.SubscribeOptions{Group: "g"})
	first := receive(t, sub, 1, 20*time.Second) // the group is joined
	start, last := time.Now(), time.Now()
	var gap time.Duration
	got := first
	for len(got) < n {
		got = append(got, receive(t, sub, 1, 60*time.Second)...)
		gap = max(gap, time.Since(last))
		last = time.Now()
	}
	took := time.Since(start)
	t.Logf("longest wait between two messages: %s", gap.Round(time.Millisecond))
	for i, m := range got {
		if string(m.Payload) != keyed(n, nil)[i].UUID[2:] {
			t.Fatalf("out of order: %s", payloads(got))
		}
	}
	if gap > 2500*time.Millisecond {
		t.Errorf("%d messages took %s, one waiting %s: the resumed partition waited out its idle sibling's fetch long poll",
			n, took.Round(time.Millisecond), gap.Round(time.Millisecond))
	}
	t.Logf("%d messages in %s", n, took.Round(time.Millisecond))
}
