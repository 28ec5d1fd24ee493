package pubsub_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/pubsubtest"
)

// TestLagAndTail: Lag reads a group's position and the topic's end from the
// transport; Tail sees what is published after it starts (or everything, fromStart)
// and moves no group.
func TestLagAndTail(t *testing.T) {
	h := pubsubtest.New(t)
	c := h.Client
	topic := pubsub.NewTopic[string]("tailed")
	ctx := context.Background()
	must(t, pubsub.Publish(ctx, c, topic, "before"))
	if stats, err := c.Lag(ctx, topic.Name(), "nobody"); err != nil || len(stats) != 1 || stats[0].End != 1 || stats[0].Committed != -1 {
		t.Fatalf("Lag of a group that never consumed: %+v, %v", stats, err)
	}
	if _, err := c.Lag(ctx, "no.such.topic", "g"); !errors.Is(err, pubsub.ErrUnknownSubscription) {
		t.Fatalf("Lag of a missing topic: %v", err)
	}
	got := make(chan string, 4)
	tailCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- c.Tail(tailCtx, topic.Name(), false, func(m *message.Message) error {
			got <- string(m.Payload)
			return nil
		})
	}()
	// The tail is running once a message published now reaches it.
	deadline := time.After(5 * time.Second)
	for seen := false; !seen; {
		must(t, pubsub.Publish(ctx, c, topic, "after"))
		select {
		case p := <-got:
			if p == `"before"` {
				t.Fatal("a tail from now on got a message published before it")
			}
			seen = true
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatal("the tail got nothing")
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	all := 0
	err := c.Tail(ctx, topic.Name(), true, func(*message.Message) error {
		all++
		if all == 2 {
			return errors.New("enough")
		}
		return nil
	})
	if err == nil || err.Error() != "enough" {
		t.Fatalf("Tail from the start, stopped by fn: %v", err)
	}
}
