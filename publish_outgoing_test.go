package pubsub_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

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
	// Metadata a handler forwards from a message it read: a repeated header (h, h[1])
	// and watermill-kafka's id header, which both paths write once, as the message's own.
	opts := []pubsub.PublishOption{pubsub.WithMessageKey("k1"), pubsub.WithCorrelationID("conv-7"),
		pubsub.WithMetadata("tenant", "acme"), pubsub.WithMetadata("region", "eu"),
		pubsub.WithMetadata("h", "one"), pubsub.WithMetadata("h[1]", "two"),
		pubsub.WithMetadata(kafka.UUIDHeader, "forwarded-id")}
	send := func(c *pubsub.Client, v string) {
		t.Helper()
		done := make(chan error, 1)
		pubsub.PublishAsync(ctx, c, topic, v, func(err error) { done <- err }, opts...)
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
	if err := pubsub.Publish(ctx, lean, topic, "lean sync", opts...); err != nil {
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
		for _, k := range []string{metadata.Key, metadata.CorrelationID, metadata.ContentType, metadata.MessageType, "tenant", "region", "h", "h[1]"} {
			if a.Metadata[k] != b.Metadata[k] || a.Metadata[k] == "" {
				t.Errorf("%s: lean %q, Watermill path %q", k, a.Metadata[k], b.Metadata[k])
			}
		}
	}
	// The records as any Kafka client reads them: one id header each, the repeated
	// header under its own key twice, the same header keys on both paths.
	raw, err := kgo.NewClient(kgo.SeedBrokers(cluster.Addrs...), kgo.ConsumeTopics(topic.Name()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var records []*kgo.Record
	pollCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for len(records) < 3 && pollCtx.Err() == nil {
		raw.PollFetches(pollCtx).EachRecord(func(r *kgo.Record) { records = append(records, r) })
	}
	if len(records) != 3 {
		t.Fatalf("read %d raw records, want 3", len(records))
	}
	headerKeys := func(r *kgo.Record) []string {
		var ks []string
		for _, h := range r.Headers {
			ks = append(ks, h.Key)
		}
		slices.Sort(ks)
		return ks
	}
	for i, r := range records {
		ks := headerKeys(r)
		if n := len(slices.DeleteFunc(slices.Clone(ks), func(k string) bool { return k != kafka.UUIDHeader })); n != 1 {
			t.Errorf("record %d has %d id headers, want 1: %v", i, n, ks)
		}
		if slices.Contains(ks, "h[1]") || !slices.Equal(ks, headerKeys(records[1])) {
			t.Errorf("record %d headers %v, the Watermill path's %v", i, ks, headerKeys(records[1]))
		}
	}
	for _, msg := range msgs {
		m, err := pubsub.Decode(topic, msg)
		if err != nil {
			t.Fatal(err)
		}
		if m.Key != "k1" || m.CorrelationID != "conv-7" || m.Metadata["tenant"] != "acme" || m.PublishedAt.IsZero() || len(m.ID) != 36 ||
			msg.UUID == "forwarded-id" || metadata.Values(msg.Metadata, "h")[1] != "two" {
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
