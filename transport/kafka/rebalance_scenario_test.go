package kafka_test

import (
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

// TestRebalanceDuringLongRetryWait: member A nacks the first message of each of two
// partitions and so waits out a retry backoff of 10 minutes (nack_delay) on both; B
// joins the group. A partition moves to B within seconds (A's revoke does not sit
// out the backoff), B handles the moved partition's message, and A does not handle
// it again: it is neither lost nor handled twice at once.
func TestRebalanceDuringLongRetryWait(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.New(t)
	topic := kafkatest.Topic("rebalance-wait")
	cfg := kafka.Config{Partitions: 2, NackDelay: 10 * time.Minute, SessionTimeout: 9 * time.Second, RebalanceTimeout: 6 * time.Second}
	a := newTransport(t, cluster, cfg)
	// One message per partition: keys that murmur2 puts on partitions 0 and 1.
	keys := map[int32]string{}
	for i := 0; len(keys) < 2; i++ {
		k := "key-" + string(rune('a'+i))
		if _, ok := keys[javaPartition(k, 2)]; !ok {
			keys[javaPartition(k, 2)] = k
		}
	}
	msgs := keyed(2, func(i int) string { return keys[int32(i)] })
	if err := a.Publish(topic, msgs...); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	handledByA := map[string]int{}
	subA := subscribe(t, a, topic, transport.SubscribeOptions{Group: "g"})
	for range 2 {
		select {
		case m := <-subA.Messages():
			mu.Lock()
			handledByA[string(m.Payload)]++
			mu.Unlock()
			m.Nack() // an in-place retry in 10 minutes
		case <-time.After(20 * time.Second):
			t.Fatal("A did not receive both messages")
		}
	}
	go func() { // A keeps handling whatever it gets again (it must not get the moved one)
		for m := range subA.Messages() {
			mu.Lock()
			handledByA[string(m.Payload)]++
			mu.Unlock()
			m.Ack()
		}
	}()

	b := newTransport(t, cluster, cfg)
	joined := time.Now()
	subB := subscribe(t, b, topic, transport.SubscribeOptions{Group: "g"})
	var moved *message.Message
	select {
	case moved = <-subB.Messages():
		moved.Ack()
	case <-time.After(2 * time.Minute): // seconds on a quiet machine; the defect waits 10 minutes
		t.Fatalf("B received nothing within 2 minutes of joining: the rebalance stalled on A's 10-minute retry wait")
	}
	took := time.Since(joined)
	time.Sleep(time.Second) // what A would wrongly handle again shows by now
	mu.Lock()
	defer mu.Unlock()
	if n := handledByA[string(moved.Payload)]; n != 1 {
		t.Errorf("A handled the moved message %q %d times, want once (the nacked attempt)", moved.Payload, n)
	}
	t.Logf("message %q moved to B %s after B joined", moved.Payload, took.Round(time.Millisecond))
	if _, ok := transport.PositionFrom(moved.Context()); !ok {
		t.Error("the moved message has no position")
	}
}
