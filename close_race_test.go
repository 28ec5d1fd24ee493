package pubsub_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/internal/kafkatest"
)

// TestSubscribeRacingCloseOnKafka: 48 Subscribe calls (each provisioning four new
// topics) race Close of a client on Kafka, running or not. Each returns nil or an
// error that wraps ErrClosed, and all return within seconds of Close, not after the
// 30 s provisioning timeout.
func TestSubscribeRacingCloseOnKafka(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.New(t)
	for _, running := range []bool{false, true} {
		t.Run(fmt.Sprintf("running=%v", running), func(t *testing.T) { subscribeRacingClose(t, cluster, running) })
	}
}

func subscribeRacingClose(t *testing.T, cluster *kafkatest.Cluster, running bool) {
	ctx := context.Background()
	c, err := pubsub.Open(ctx, cluster.URL(""))
	if err != nil {
		t.Fatal(err)
	}
	if running {
		go c.Run(ctx)
		<-c.Running()
	}
	const n = 48
	var wg sync.WaitGroup
	errs := make([]error, n)
	took := make([]time.Time, n)
	finished := make(chan struct{}, n)
	base := kafkatest.Topic("close-race")
	for i := range n {
		wg.Go(func() {
			topic := pubsub.NewTopic[string](fmt.Sprintf("%s.%d", base, i))
			errs[i] = pubsub.Subscribe(c, topic, "g", func(context.Context, *pubsub.Message[string]) error { return nil })
			took[i] = time.Now()
			finished <- struct{}{}
		})
	}
	for range 4 {
		<-finished // the first few are through; the others are provisioning
	}
	closing := time.Now()
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	wg.Wait()
	subscribed, closed := 0, 0
	var slowest time.Duration
	for i, err := range errs {
		slowest = max(slowest, took[i].Sub(closing))
		switch {
		case err == nil:
			subscribed++
		case errors.Is(err, pubsub.ErrClosed):
			closed++
		default:
			t.Errorf("Subscribe %d racing Close: %v, want nil or an error wrapping ErrClosed", i, err)
		}
	}
	t.Logf("%d subscribed, %d refused with ErrClosed; the last returned %s after Close began", subscribed, closed, slowest.Round(time.Millisecond))
	// Close itself drains for up to its drain timeout; the calls must not wait out the
	// 30 s provisioning timeout beyond it.
	if slowest > 20*time.Second {
		t.Errorf("a Subscribe racing Close returned %s after Close began", slowest)
	}
}
