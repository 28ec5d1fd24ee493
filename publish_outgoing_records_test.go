package pubsub_test

import (
	"context"
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/codec"
	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

// uuidV4 is the text of a random (version 4, RFC 4122 variant) UUID.
var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestPublishOutgoingRecordsByteForByte: many goroutines publish on the lean path at
// once (PublishAsync, Publish and PublishBatch), so that sends and records are reused
// while others are in flight; every record read back carries exactly its own headers,
// in order and byte for byte: a unique version 4 id, the content type and type, the
// publish time in RFC 3339 with nanoseconds, the correlation id (its own id for a new
// conversation), its WithMetadata entry, its key and its payload; the record's
// timestamp is the publish time, to the millisecond. The topic is new to
// the producer, so the first records also wait for its metadata.
func TestPublishOutgoingRecordsByteForByte(t *testing.T) {
	cluster := kafkatest.New(t)
	ctx := context.Background()
	tr, err := kafka.New(ctx, kafka.Config{Brokers: cluster.Addrs})
	if err != nil {
		t.Fatal(err)
	}
	c, err := pubsub.New(tr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	topic := pubsub.NewTopic[[]byte](kafkatest.Topic("lean-bytes"), pubsub.WithCodec(codec.Raw))

	const goroutines, each = 6, 300
	began := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*each)
	for g := range goroutines {
		wg.Go(func() {
			var batch [][]byte
			for i := range each {
				n := fmt.Sprintf("%d-%d", g, i)
				// Every third message has a key and a correlation id of its own, of a
				// length that makes the values overflow the send's own bytes now and then.
				opts := []pubsub.PublishOption{pubsub.WithMetadata("n", n)}
				if i%3 == 0 {
					opts = append(opts, pubsub.WithMessageKey("key-"+n), pubsub.WithCorrelationID(fmt.Sprintf("conv-%s-%0*d", n, i%70, 0)))
				}
				switch g % 3 {
				case 0:
					pubsub.PublishAsync(ctx, c, topic, []byte("v-"+n), func(err error) { errs <- err }, opts...)
				case 1:
					errs <- pubsub.Publish(ctx, c, topic, []byte("v-"+n), opts...)
				case 2:
					batch = append(batch, []byte("v-"+n))
					if len(batch) == 50 {
						// One option set for the whole batch: its n names the batch's last value.
						errs <- pubsub.PublishBatch(ctx, c, topic, batch, pubsub.WithMetadata("n", n))
						batch = nil
					}
				}
			}
		})
	}
	wg.Wait()
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ended := time.Now()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	raw, err := kgo.NewClient(kgo.SeedBrokers(cluster.Addrs...), kgo.ConsumeTopics(topic.Name()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	const want = goroutines * each
	var records []*kgo.Record
	pollCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for len(records) < want && pollCtx.Err() == nil {
		raw.PollFetches(pollCtx).EachRecord(func(r *kgo.Record) { records = append(records, r) })
	}
	if len(records) != want {
		t.Fatalf("read %d records, want %d", len(records), want)
	}

	ids := map[string]bool{}
	for _, r := range records {
		payload := string(r.Value)
		var n string
		if _, err := fmt.Sscanf(payload, "v-%s", &n); err != nil {
			t.Fatalf("payload %q", payload)
		}
		var g, i int
		fmt.Sscanf(n, "%d-%d", &g, &i)
		if len(r.Headers) != 6 {
			t.Fatalf("%s: %d headers, want 6: %v", payload, len(r.Headers), r.Headers)
		}
		keys := []string{kafka.UUIDHeader, metadata.ContentType, metadata.MessageType, metadata.PublishedAt, metadata.CorrelationID, "n"}
		for j, h := range r.Headers {
			if h.Key != keys[j] {
				t.Fatalf("%s: header %d is %q, want %q", payload, j, h.Key, keys[j])
			}
		}
		id := string(r.Headers[0].Value)
		if !uuidV4.MatchString(id) || ids[id] {
			t.Fatalf("%s: id %q malformed or seen before", payload, id)
		}
		ids[id] = true
		if ct, typ := string(r.Headers[1].Value), string(r.Headers[2].Value); ct != "application/octet-stream" || typ != "[]uint8" {
			t.Errorf("%s: content type %q, type %q", payload, ct, typ)
		}
		at := string(r.Headers[3].Value)
		when, err := time.Parse(time.RFC3339Nano, at)
		if err != nil || metadata.FormatTime(when) != at || when.Before(began.Add(-time.Second)) || when.After(ended.Add(time.Second)) {
			t.Errorf("%s: published_at %q (%v), not RFC 3339 in UTC with nanoseconds between %v and %v", payload, at, err, began, ended)
		}
		if r.Timestamp.UnixMilli() != when.UnixMilli() { // the record's timestamp is the publish time
			t.Errorf("%s: record timestamp %v, published_at %v", payload, r.Timestamp, when)
		}
		corr, md := string(r.Headers[4].Value), string(r.Headers[5].Value)
		own := g%3 != 2 && i%3 == 0
		switch {
		case own && (corr != fmt.Sprintf("conv-%s-%0*d", n, i%70, 0) || string(r.Key) != "key-"+n):
			t.Errorf("%s: correlation id %q, key %q", payload, corr, r.Key)
		case !own && (corr != id || r.Key != nil):
			t.Errorf("%s: correlation id %q, want its id %q; key %q, want none", payload, corr, id, r.Key)
		}
		if g%3 != 2 && md != n || g%3 == 2 && md != fmt.Sprintf("%d-%d", g, i/50*50+49) {
			t.Errorf("%s: header n %q", payload, md)
		}
	}
}
