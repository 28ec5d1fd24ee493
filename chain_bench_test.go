package pubsub

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/middleware"
	"github.com/pubsubkit/pubsub/transport/memory"
)

type chainOrder struct {
	ID    string `json:"id"`
	Total int    `json:"total"`
}

// BenchmarkChain runs one message through a subscription's whole middleware chain and
// typed decode to a handler that does nothing, with no transport or router around
// it: the SDK's own cost per handled message. go test -run '^$' -bench Chain -benchmem .
func BenchmarkChain(b *testing.B) {
	for _, ordering := range []Ordering{Ordered, Unordered} {
		b.Run(ordering.String(), func(b *testing.B) {
			c := benchClient(b, memory.Config{})
			topic := NewTopic[chainOrder]("chain")
			d := Delivery{Retry: 3, Ordering: ordering}
			s := &subscription{topic: topic.name, group: "g", delivery: &d, deadLetterTopic: DeadLetterTopicName(topic.name, "g")}
			h, err := c.chain(s, &feed{kind: middleware.FeedTopic, topic: topic.name, group: "g"}, func(msg *message.Message) ([]*message.Message, error) {
				_, err := Decode(topic, msg)
				return nil, err
			})
			if err != nil {
				b.Fatal(err)
			}
			payload := []byte(`{"id":"o-1","total":1250}`)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				msg := message.NewMessage(newID(), payload)
				msg.SetContext(ctx)
				if _, err := h(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPublishPath publishes typed messages to the memory transport with no
// subscriber: encoding, metadata, the published event and the hand-over, without any
// consumer. go test -run '^$' -bench PublishPath -benchmem .
func BenchmarkPublishPath(b *testing.B) {
	c := benchClient(b, memory.Config{MaxRetained: 1 << 30, MaxRetainedBytes: 1 << 40, MaxBytes: 1 << 40})
	topic := NewTopic[chainOrder]("publish", WithKey(func(o chainOrder) string { return o.ID }))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := Publish(ctx, c, topic, chainOrder{ID: "o-1", Total: 1250}); err != nil {
			b.Fatal(err)
		}
	}
}

// benchClient is a client on a memory transport made with cfg, closed when b ends.
func benchClient(b *testing.B, cfg memory.Config) *Client {
	tr, err := memory.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	c, err := New(tr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}
