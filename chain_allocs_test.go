//go:build !race

// The race detector allocates on its own: the count is checked without it.

package pubsub

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/codec"
	"github.com/pubsubkit/pubsub/middleware"
	"github.com/pubsubkit/pubsub/transport/memory"
)

// TestChainAllocations: the whole chain of a subscription costs three allocations per
// message with the raw codec, whichever the ordering: the correlation stage's context
// (which also holds drain's), the Message and the raw codec's copy of the payload. The
// observe stage puts nothing in the context, and Message.Metadata is not made for a
// message without keys for the handler.
func TestChainAllocations(t *testing.T) {
	for _, ordering := range []Ordering{Ordered, Unordered} {
		t.Run(ordering.String(), func(t *testing.T) {
			tr, err := memory.New(memory.Config{})
			if err != nil {
				t.Fatal(err)
			}
			c, err := New(tr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			topic := NewTopic[[]byte]("allocs", WithCodec(codec.Raw))
			d := Delivery{Retry: 3, Ordering: ordering}
			s := &subscription{topic: topic.name, group: "g", delivery: &d, deadLetterTopic: DeadLetterTopicName(topic.name, "g")}
			handled := 0
			h, err := c.chain(s, &feed{kind: middleware.FeedTopic, topic: topic.name, group: "g"},
				decodeStage(topic, 0, s, func(*message.Message, *Message[[]byte]) error { handled++; return nil }))
			if err != nil {
				t.Fatal(err)
			}
			msg := message.NewMessage("m1", []byte("payload"))
			msg.Metadata.Set("content-type", codec.Raw.ContentType())
			msg.SetContext(context.Background())
			allocs := testing.AllocsPerRun(200, func() {
				if _, err := h(msg); err != nil {
					t.Fatal(err)
				}
			})
			t.Logf("%v allocations per message", allocs)
			if allocs > 3 || handled == 0 {
				t.Errorf("%v allocations per message through the chain (handled %d), want at most 3", allocs, handled)
			}
		})
	}
}
