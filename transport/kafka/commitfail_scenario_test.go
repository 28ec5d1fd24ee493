package kafka_test

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

// TestCommitFailureDuringDrainReportedByClose: every offset commit fails (the broker
// answers OFFSET_METADATA_TOO_LARGE) while a subscription handles and acks 100
// messages and then drains at Close: Close returns an error naming the failed
// commit, and a new member of the group receives all 100 again once commits work:
// 0 lost.
func TestCommitFailureDuringDrainReportedByClose(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.New(t)
	fake := cluster.RequireFake(t)
	topic := kafkatest.Topic("commitfail")
	var failing atomic.Bool
	var failed atomic.Int64
	failing.Store(true)
	fake.ControlKey(int16(kmsg.OffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
		fake.KeepControl()
		if !failing.Load() {
			return nil, nil, false
		}
		failed.Add(1)
		r := req.(*kmsg.OffsetCommitRequest)
		resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range r.Topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})

	cfg := kafka.Config{Brokers: cluster.Addrs, CommitInterval: time.Hour} // only the drain commits
	first, err := kafka.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	const n = 100
	if err := first.Publish(topic, keyed(n, nil)...); err != nil {
		t.Fatal(err)
	}
	sub, err := first.Subscribe(t.Context(), topic, transport.SubscribeOptions{Group: "g", Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	receive(t, sub, n, 20*time.Second)
	closeErr := first.Close()
	if closeErr == nil {
		t.Fatalf("Close returned nil though the drain's offset commit failed (%d commits refused)", failed.Load())
	}
	if !strings.Contains(closeErr.Error(), "commit") || !strings.Contains(closeErr.Error(), "OFFSET_METADATA_TOO_LARGE") {
		t.Errorf("Close's error does not name the failed commit: %v", closeErr)
	}
	t.Logf("Close: %v", closeErr)

	failing.Store(false)
	second := newTransport(t, cluster, kafka.Config{})
	again := subscribe(t, second, topic, transport.SubscribeOptions{Group: "g"})
	c := newTally()
	for _, m := range receive(t, again, n, 20*time.Second) {
		c.add(string(m.Payload))
	}
	if lost, dup := c.lostAndDuplicated(n); lost+dup > 0 {
		t.Errorf("after the failed commit: %d lost, %d duplicated of %d", lost, dup, n)
	}
}
