package testsuite

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/codec"
	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/pubsubtest"
)

// testPoisonInputKeepsFlowing: on one key (one partition), an undecodable payload, a
// payload in another content type, one over the client's WithMaxPayload and one whose
// handler panics each end in the dead-letter topic with a reason that says why, and
// the good messages around them are handled, the last one after all four.
func testPoisonInputKeepsFlowing(t *testing.T, h Harness) {
	const limit = 2048
	c, tr := newClientOn(t, h, pubsub.WithMaxPayload(limit))
	name := uniqueName(t, "poison")
	typed := pubsub.NewTopic[order](name)
	rec := newRecorder[order]()
	if err := pubsub.Subscribe(c, typed, "billing", func(ctx context.Context, m *pubsub.Message[order]) error {
		if m.Payload.ID == "panic" {
			panic("handler bug on " + m.ID)
		}
		return rec.handle(ctx, m)
	}); err != nil {
		t.Fatal(err)
	}
	dead := subscribe(t, tr, pubsub.DeadLetterTopicName(name, "billing"), "inspect")
	pubsubtest.Run(t, c)

	ctx := context.Background()
	key := pubsub.WithMessageKey("one-partition")
	raw := func(payload, contentType string) *message.Message {
		m := message.NewMessage(uuid.NewString(), []byte(payload))
		m.Metadata.Set(metadata.ContentType, contentType)
		m.Metadata.Set(metadata.Key, "one-partition")
		return m
	}
	if err := pubsub.Publish(ctx, c, typed, order{ID: "first"}, key); err != nil {
		t.Fatal(err)
	}
	oversized := `{"id":"` + strings.Repeat("x", limit) + `"}`
	publishRaw(t, tr, name,
		raw(`{"id":`, codec.JSON.ContentType()),
		raw("\x00\x01 binary", codec.Raw.ContentType()),
		raw(oversized, codec.JSON.ContentType()), // from a producer without the limit
	)
	if err := pubsub.Publish(ctx, c, typed, order{ID: "panic"}, key); err != nil {
		t.Fatal(err)
	}
	if err := pubsub.Publish(ctx, c, typed, order{ID: "last"}, key); err != nil {
		t.Fatal(err)
	}
	if err := pubsub.Publish(ctx, c, typed, order{ID: strings.Repeat("y", limit)}, key); !errors.Is(err, pubsub.ErrPayloadTooLarge) {
		t.Errorf("publishing over WithMaxPayload returned %v, want ErrPayloadTooLarge", err)
	}

	letters := receive(t, dead, 4, h.Timeout)
	wants := []struct{ payload, reason string }{
		{`{"id":`, "cannot decode"},
		{"\x00\x01 binary", "content type"},
		{oversized, "payload too large"},
		{`"panic"`, "panic"},
	}
	for i, w := range wants {
		d := letters[i]
		if !strings.Contains(string(d.Payload), w.payload) {
			t.Errorf("dead letter %d holds %.40q, want the message with %q (in publish order)", i+1, d.Payload, w.payload)
		}
		if reason := d.Metadata.Get(metadata.DeadLetterReason); !strings.Contains(reason, w.reason) {
			t.Errorf("dead letter %d reason %q does not say %q", i+1, reason, w.reason)
		}
	}
	got := rec.wait(t, 2, h.Timeout)
	if len(got) != 2 || got[0].Payload.ID != "first" || got[1].Payload.ID != "last" {
		t.Fatalf("handler saw %v; want first, then last after the poison", got)
	}
}
