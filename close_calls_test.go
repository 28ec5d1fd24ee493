package pubsub_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/internal/kafkatest"
)

// TestCallsRacingCloseOnKafka: Publish, PublishBatch, PublishAsync, DeadLetters and
// Flush racing Close of a running client on Kafka return nil or an error that wraps
// ErrClosed (a DeadLetters read cut short by Close said "client closed" before), and
// every caller is through a round of calls after Close promptly.
func TestCallsRacingCloseOnKafka(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.New(t)
	ctx := context.Background()
	c, err := pubsub.Open(ctx, cluster.URL(""))
	if err != nil {
		t.Fatal(err)
	}
	topic := pubsub.NewTopic[string](kafkatest.Topic("close-calls"))
	if err := pubsub.Subscribe(c, topic, "g", func(context.Context, *pubsub.Message[string]) error { return nil }); err != nil {
		t.Fatal(err)
	}
	go c.Run(ctx)
	<-c.Running()
	if err := pubsub.Publish(ctx, c, topic, "warm"); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var bad []error
	check := func(what string, err error) {
		if err != nil && !errors.Is(err, pubsub.ErrClosed) {
			mu.Lock()
			bad = append(bad, errors.New(what+": "+err.Error()))
			mu.Unlock()
		}
	}
	const callers = 4
	stop := make(chan struct{})
	var rounds [callers]atomic.Int64
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			for ; ; rounds[i].Add(1) {
				select {
				case <-stop:
					return
				default:
				}
				check("Publish", pubsub.Publish(ctx, c, topic, "v"))
				check("PublishBatch", pubsub.PublishBatch(ctx, c, topic, []string{"a", "b", "c"}))
				done := make(chan error, 1)
				pubsub.PublishAsync(ctx, c, topic, "async", func(err error) { done <- err })
				check("PublishAsync", <-done)
				_, err := c.DeadLetters(ctx, topic.Name(), "g")
				check("DeadLetters", err)
				check("Flush", c.Flush(ctx))
			}
		})
	}
	// Close once every caller is through a round, then let each finish a round that
	// began after Close returned.
	through := func(after [callers]int64) bool {
		for i := range callers {
			if rounds[i].Load() <= after[i] {
				return false
			}
		}
		return true
	}
	waitUntil := func(what string, cond func() bool) {
		for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 30s", what)
			}
		}
	}
	waitUntil("a round of calls before Close", func() bool { return through([callers]int64{}) })
	closing := time.Now()
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	var atClose [callers]int64
	for i := range callers {
		atClose[i] = rounds[i].Load()
	}
	waitUntil("a round of calls after Close", func() bool { return through(atClose) })
	close(stop)
	wg.Wait()
	t.Logf("every caller through a round of calls %s after Close began", time.Since(closing))
	for _, e := range bad {
		t.Error(e)
	}
}
