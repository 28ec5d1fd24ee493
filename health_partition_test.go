package pubsub_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/transport"
)

// TestHealthStalledPartitionAmongBusyOnes: on a two-partition Kafka topic one
// partition's handler never returns while the other partition keeps finishing
// messages. Health reports the subscription stalled (and liveness fails) though the
// subscription as a whole makes progress: one stuck partition is a stall.
func TestHealthStalledPartitionAmongBusyOnes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, err := pubsub.Open(ctx, kafkatest.New(t).URL("partitions=2"), pubsub.WithStallAfter(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	defer c.Close()
	defer close(release)
	topic := pubsub.NewTopic[string](kafkatest.Topic("stalled-partition"))
	finished := make(chan struct{}, 1)
	must(t, pubsub.Subscribe(c, topic, "g", func(ctx context.Context, _ *pubsub.Message[string]) error {
		if pos, _ := transport.PositionFrom(ctx); pos.Partition == 0 {
			<-release // stuck
			return nil
		}
		select {
		case finished <- struct{}{}:
		default:
		}
		return nil
	}))
	go c.Run(ctx)
	<-c.Running()
	deadline := time.Now().Add(30 * time.Second)
	var h pubsub.SubscriptionHealth
	for time.Now().Before(deadline) {
		// keys k0..k9 land on both partitions; partition 1 keeps making progress
		for k := range 10 {
			must(t, pubsub.Publish(ctx, c, topic, "v", pubsub.WithMessageKey(fmt.Sprint("k", k))))
		}
		<-finished
		h = c.Health()[0]
		if h.Stalled {
			break
		}
	}
	if !h.Stalled {
		t.Fatalf("one partition stuck for 30s while the other progressed; Health: %+v", h)
	}
	if time.Since(h.LastProgress) > 20*time.Second { // the busy partition's last message came moments ago
		t.Errorf("LastProgress %s: the busy partition's progress should show", h.LastProgress)
	}
	if code := probe(t, c.LivenessHandler()); code != http.StatusServiceUnavailable {
		t.Errorf("liveness with a stuck partition: %d, want 503", code)
	}
}
