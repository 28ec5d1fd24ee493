package kafka_test

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

// TestFullLaneDoesNotWaitForIdleSibling: two partitions led by one broker, only one
// with messages; its lane fills (prefetch 4) again and again. Had its fetching been
// paused each time, it would be left out of its broker's fetches, and once resumed
// it would wait for the fetch in flight, which the broker holds for its idle sibling
// as long as the client lets it. The subscription waits to poll instead, so no fetch
// leaves the partition out (drops it from the fetch session) while it has messages,
// and no fetch asks the broker to wait more than 500 ms (franz-go's default of 5 s
// stalled each resume 5 s). Both are checked on the requests themselves rather than
// on the wall clock of a loaded machine; the longest gap between two messages is
// logged.
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
	var fetches, longWaits, leftOut atomic.Int64
	var longest atomic.Int32
	var consumed atomic.Bool
	fake.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		fake.KeepControl()
		fetches.Add(1)
		fr := req.(*kmsg.FetchRequest)
		if w := fr.MaxWaitMillis; w > 500 {
			longWaits.Add(1)
			longest.Store(w)
		}
		for _, ft := range fr.ForgottenTopics { // the consumer fetches this one topic
			if slices.Contains(ft.Partitions, 0) && !consumed.Load() {
				leftOut.Add(1)
			}
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
	consumed.Store(true)
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
	if leftOut.Load() > 0 {
		t.Errorf("%d of %d fetches dropped partition 0 from the fetch session while it had messages: its fetching was paused, so a resume waits for its idle sibling's fetch (%d messages took %s, one waiting %s)",
			leftOut.Load(), fetches.Load(), n, took.Round(time.Millisecond), gap.Round(time.Millisecond))
	}
	t.Logf("%d messages in %s", n, took.Round(time.Millisecond))
}

// TestSlowPartitionDoesNotHoldBackItsSibling: the poll loop waits while a lane is full,
// but only for a while: a partition whose handler does not finish (here its first
// message is never acked) holds it back no longer after 250 ms (its next fetch then
// waits beside it, its fetching paused), and its sibling's messages keep coming.
// Without that limit the loop would wait for good once the slow lane filled, with a
// few of the sibling's 200 messages handled (it fails so within the 30 s).
func TestSlowPartitionDoesNotHoldBackItsSibling(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.New(t)
	topic := kafkatest.Topic("slowsibling")
	tr := newTransport(t, cluster, kafka.Config{Partitions: 2, Prefetch: 4, FetchBytes: 64})
	slowKey, fastKey := "a", "b"
	for javaPartition(slowKey, 2) != 0 {
		slowKey += "a"
	}
	for javaPartition(fastKey, 2) != 1 {
		fastKey += "b"
	}
	const slow, fast = 40, 200
	for _, m := range keyed(slow, func(int) string { return slowKey }) {
		if err := tr.Publish(topic, m); err != nil { // one batch each
			t.Fatal(err)
		}
	}
	for _, m := range keyed(fast, func(int) string { return fastKey }) {
		if err := tr.Publish(topic, m); err != nil {
			t.Fatal(err)
		}
	}
	sub := subscribe(t, tr, topic, transport.SubscribeOptions{Group: "g"})
	var held []*message.Message
	defer func() {
		for _, m := range held {
			m.Ack()
		}
	}()
	got := 0
	deadline := time.After(30 * time.Second)
	for got < fast {
		select {
		case m := <-sub.Messages():
			if offsetOf(t, m).Partition == 0 {
				held = append(held, m) // never finished while the test runs
				continue
			}
			got++
			m.Ack()
		case <-deadline:
			t.Fatalf("received %d of partition 1's %d messages in 30 s while partition 0's first message was never finished: the slow partition held its sibling back", got, fast)
		}
	}
	if len(held) != 1 {
		t.Errorf("partition 0 handed out %d messages with Concurrency 1 and the first one unfinished; want 1", len(held))
	}
}
