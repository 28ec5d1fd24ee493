package kafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

// TestPublishLargerThanEveryQueue: one Publish of 5,000 records, 50 times the
// producer's buffered-records limit (publish_queue 100) and above its byte limit,
// completes, and every record is consumed once.
func TestPublishLargerThanEveryQueue(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.New(t)
	topic := kafkatest.Topic("big")
	tr := newTransport(t, cluster, kafka.Config{PublishQueue: 100, PublishQueueBytes: 4 << 10})
	const n = 5000
	msgs := keyed(n, func(i int) string { return "k" + string(rune('a'+i%7)) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msgs[0].SetContext(ctx)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- tr.Publish(topic, msgs...) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Publish of %d records: %v", n, err)
		}
	case <-time.After(40 * time.Second):
		t.Fatalf("Publish of %d records through a queue of 100 did not return within 40s", n)
	}
	t.Logf("Publish of %d records returned after %s", n, time.Since(start).Round(time.Millisecond))
	c := newTally()
	sub := subscribe(t, tr, topic, transport.SubscribeOptions{Group: "g", Concurrency: 16})
	for _, m := range receive(t, sub, n, 30*time.Second) {
		c.add(string(m.Payload))
	}
	if lost, dup := c.lostAndDuplicated(n); lost+dup > 0 {
		t.Errorf("%d lost, %d duplicated of %d", lost, dup, n)
	}
}
