package pubsub_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

// TestPublishAsyncLeanRecord: on Kafka, a Publish or PublishAsync that nobody observes (no hook,
// no trace log, tracing off) goes out without a Watermill message, and its record
// carries the same headers, key and payload as one made through the Watermill
// message (a client with a hook); the handler reads both alike.
func TestPublishAsyncLeanRecord(t *testing.T) {
	cluster := kafkatest.New(t)
	ctx := context.Background()
	var reader transport.Reader
	open := func(opts ...pubsub.Option) *pubsub.Client {
		tr, err := kafka.New(ctx, kafka.Config{Brokers: cluster.Addrs, MaxMessageBytes: 4096})
		if err != nil {
			t.Fatal(err)
		}
		reader = tr
		c, err := pubsub.New(tr, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	lean := open()
	full := open(pubsub.WithEventHook(func(pubsub.Event) {}))
	topic := pubsub.NewTopic[string](kafkatest.Topic("lean"))
	send := func(c *pubsub.Client, v string) {
		t.Helper()
		done := make(chan error, 1)
		pubsub.PublishAsync(ctx, c, topic, v, func(err error) { done <- err },
			pubsub.WithMessageKey("k1"), pubsub.WithCorrelationID("conv-7"),
			pubsub.WithMetadata("tenant", "acme"), pubsub.WithMetadata("region", "eu"))
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("PublishAsync: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("PublishAsync did not settle")
		}
	}
	send(lean, "lean")
	send(full, "full")
	if err := pubsub.Publish(ctx, lean, topic, "lean sync", pubsub.WithMessageKey("k1"), pubsub.WithCorrelationID("conv-7"),
		pubsub.WithMetadata("tenant", "acme"), pubsub.WithMetadata("region", "eu")); err != nil {
		t.Fatalf("Publish: %v", err)
	}

	msgs, err := reader.ReadAll(ctx, topic.Name())
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 {
		t.Fatalf("%d records, want 3", len(msgs))
	}
	keys := func(md map[string]string) []string { return slices.Sorted(maps.Keys(md)) }
	b := msgs[1] // through the Watermill message
	for _, a := range []*message.Message{msgs[0], msgs[2]} {
		if !slices.Equal(keys(a.Metadata), keys(b.Metadata)) {
			t.Fatalf("lean record's metadata %v, the Watermill path's %v", keys(a.Metadata), keys(b.Metadata))
		}
		for _, k := range []string{metadata.Key, metadata.CorrelationID, metadata.ContentType, metadata.MessageType, "tenant", "region"} {
			if a.Metadata[k] != b.Metadata[k] || a.Metadata[k] == "" {
				t.Errorf("%s: lean %q, Watermill path %q", k, a.Metadata[k], b.Metadata[k])
			}
		}
	}
	for _, msg := range msgs {
		m, err := pubsub.Decode(topic, msg)
		if err != nil {
			t.Fatal(err)
		}
		if m.Key != "k1" || m.CorrelationID != "conv-7" || m.Metadata["tenant"] != "acme" || m.PublishedAt.IsZero() || len(m.ID) != 36 {
			t.Errorf("decoded %+v", m)
		}
	}

	// Too large for the transport: refused before it is queued, as on the Watermill path.
	done := make(chan error, 1)
	pubsub.PublishAsync(ctx, lean, topic, string(make([]byte, 5000)), func(err error) { done <- err })
	if err := <-done; !errors.Is(err, transport.ErrMessageTooLarge) {
		t.Fatalf("a 5,000-byte message: %v, want ErrMessageTooLarge", err)
	}
	if err := pubsub.Publish(ctx, lean, topic, string(make([]byte, 5000))); !errors.Is(err, transport.ErrMessageTooLarge) {
		t.Fatalf("Publish of a 5,000-byte message: %v, want ErrMessageTooLarge", err)
	}
}
