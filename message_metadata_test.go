package pubsub_test

import (
	"context"
	"testing"
	"time"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/transport/memory"
)

// TestMessageMetadataOnlyWhenCarried: a handler's Message.Metadata holds the
// WithMetadata entries of a message that has some, and is nil for one that has none
// (read as an empty map; the map is made only for a message with keys).
func TestMessageMetadataOnlyWhenCarried(t *testing.T) {
	tr, err := memory.New(memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := pubsub.New(tr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	topic := pubsub.NewTopic[string]("metadata-carried")
	got := make(chan map[string]string, 2)
	if err := pubsub.Subscribe(c, topic, "g", func(_ context.Context, m *pubsub.Message[string]) error {
		got <- m.Metadata
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	if err := pubsub.Publish(ctx, c, topic, "plain"); err != nil {
		t.Fatal(err)
	}
	if err := pubsub.Publish(ctx, c, topic, "tagged", pubsub.WithMetadata("tenant", "acme")); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"", "acme"} {
		select {
		case md := <-got:
			if md["tenant"] != want || (want == "") != (md == nil) {
				t.Errorf("message %d: metadata %v, want tenant %q (nil when empty)", i, md, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("not handled")
		}
	}
}
