package kafka_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

// TestFullLaneDoesNotWaitForIdleSibling: two partitions led by one broker, only one
// with messages; its lane fills (prefetch 4) again and again, so its fetching is
// paused and resumed many times while its idle sibling's fetch waits on the broker
// for data. A resumed partition is fetched when the sibling's fetch returns, which the
// broker holds for at most the fetch wait the client asks for: every fetch asks for
// at most 500 ms (franz-go's default of 5 s stalled each resume 5 s), checked on the
// requests themselves rather than on the wall clock of a loaded machine. The longest
// gap between two messages is logged.
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
	var fetches, longWaits atomic.Int64
	var longest atomic.Int32
	fake.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		fake.KeepControl()
		fetches.Add(1)
		if w := req.(*kmsg.FetchRequest).MaxWaitMillis; w > 500 {
			longWaits.Add(1)
			longest.Store(w)
		}
		return nil, nil, false
	})
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
	if longWaits.Load() > 0 || fetches.Load() == 0 {
		t.Errorf("%d of %d fetches asked the broker to wait up to %d ms for data: a resumed partition waits that long for its idle sibling's fetch (%d messages took %s, one waiting %s)",
			longWaits.Load(), fetches.Load(), longest.Load(), n, took.Round(time.Millisecond), gap.Round(time.Millisecond))
	}
	t.Logf("%d messages in %s", n, took.Round(time.Millisecond))
}
