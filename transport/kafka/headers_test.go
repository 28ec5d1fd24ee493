package kafka_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

// consumeRaw reads n records of topic from the start with a plain franz-go consumer.
func consumeRaw(t testing.TB, cluster *kafkatest.Cluster, topic string, n int) []*kgo.Record {
	t.Helper()
	cl := rawClient(t, cluster, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < n {
		f := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records of %s", len(recs), n, topic)
		}
		recs = append(recs, f.Records()...)
	}
	return recs
}

func headerValues(r *kgo.Record, key string) []string {
	var vs []string
	for _, h := range r.Headers {
		if h.Key == key {
			vs = append(vs, string(h.Value))
		}
	}
	return vs
}

// TestRepeatedHeadersReachTheHandler: a record from another client with one header
// key three times is delivered with all three values, in record order (metadata.Values),
// beside a header given once and a literal "k[1]"-like header of its own.
func TestRepeatedHeadersReachTheHandler(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.New(t)
	tr := newTransport(t, cluster, kafka.Config{})
	topic := kafkatest.Topic("repeated-in")
	if err := tr.Provision(context.Background(), topic); err != nil {
		t.Fatal(err)
	}
	raw := rawClient(t, cluster)
	r := &kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte("v"), Headers: []kgo.RecordHeader{
		{Key: "tag", Value: []byte("first")},
		{Key: "once", Value: []byte("1")},
		{Key: "tag", Value: []byte("second")},
		{Key: "tag", Value: []byte("")},
		{Key: "tag", Value: []byte("fourth")},
	}}
	if err := raw.ProduceSync(context.Background(), r).FirstErr(); err != nil {
		t.Fatal(err)
	}
	m := collectMessages(t, subscribeTail(t, tr, topic, transport.SubscribeOptions{}), 1)[0]
	if got, want := metadata.Values(m.Metadata, "tag"), []string{"first", "second", "", "fourth"}; !slices.Equal(got, want) {
		t.Errorf("Values(tag) = %q, want %q (metadata %v)", got, want, m.Metadata)
	}
	if m.Metadata.Get("tag") != "first" || m.Metadata.Get("tag[1]") != "second" || m.Metadata.Get("tag[3]") != "fourth" {
		t.Errorf("metadata %v: want the first value under tag and the later ones under tag[1], tag[2], tag[3]", m.Metadata)
	}
	if got := metadata.Values(m.Metadata, "once"); !slices.Equal(got, []string{"1"}) {
		t.Errorf("Values(once) = %q, want [1]", got)
	}
}

// TestRepeatedHeadersAreWrittenBack: a message with "k" and "k[n]" entries is written
// as the header k repeated, first value first, and read back with the same metadata.
func TestRepeatedHeadersAreWrittenBack(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.New(t)
	tr := newTransport(t, cluster, kafka.Config{})
	topic := kafkatest.Topic("repeated-out")
	m := message.NewMessage("id-1", []byte("v"))
	m.Metadata = message.Metadata{"tag": "a", "tag[1]": "b", "tag[2]": "c", "tag[3]": "d", "lone[1]": "kept as it is"}
	if err := tr.Publish(topic, m); err != nil {
		t.Fatal(err)
	}
	r := consumeRaw(t, cluster, topic, 1)[0]
	if got := headerValues(r, "tag"); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
		t.Errorf("header tag = %q, want a, b, c, d in order", got)
	}
	if got := headerValues(r, "lone[1]"); !slices.Equal(got, []string{"kept as it is"}) {
		t.Errorf("header lone[1] = %q: an indexed key without its first value is a header of its own", got)
	}
	for _, h := range r.Headers {
		if h.Key == "tag[1]" || h.Key == "tag[2]" || h.Key == "tag[3]" {
			t.Errorf("header %q written: want it as a repeated tag", h.Key)
		}
	}
	back := collectMessages(t, subscribeTail(t, tr, topic, transport.SubscribeOptions{}), 1)[0]
	for k, v := range m.Metadata {
		if back.Metadata.Get(k) != v {
			t.Errorf("read back %s = %q, want %q (metadata %v)", k, back.Metadata.Get(k), v, back.Metadata)
		}
	}
}

// TestKeyIsWrittenOnce: the record key carries metadata.Key and no pubsub_key header
// is written; a record with a pubsub_key header from an earlier version reads the
// same, and a record without a key has no metadata.Key whatever its headers say.
func TestKeyIsWrittenOnce(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.New(t)
	tr := newTransport(t, cluster, kafka.Config{Partitions: 1})
	topic := kafkatest.Topic("key")
	m := message.NewMessage("ours", []byte("v"))
	m.Metadata.Set(metadata.Key, "order-7")
	if err := tr.Publish(topic, m); err != nil {
		t.Fatal(err)
	}
	raw := rawClient(t, cluster)
	for _, r := range []*kgo.Record{
		{Topic: topic, Key: []byte("order-8"), Value: []byte("v"), Headers: []kgo.RecordHeader{{Key: metadata.Key, Value: []byte("order-8")}, {Key: kafka.UUIDHeader, Value: []byte("earlier")}}},
		{Topic: topic, Value: []byte("v"), Headers: []kgo.RecordHeader{{Key: metadata.Key, Value: []byte("forged")}, {Key: kafka.UUIDHeader, Value: []byte("keyless")}}},
		{Topic: topic, Key: []byte{}, Value: []byte("v"), Headers: []kgo.RecordHeader{{Key: kafka.UUIDHeader, Value: []byte("empty")}}},
	} {
		if err := raw.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	recs := consumeRaw(t, cluster, topic, 4)
	if string(recs[0].Key) != "order-7" || headerValues(recs[0], metadata.Key) != nil {
		t.Errorf("our record: key %q, %s headers %q; want key order-7 and no header", recs[0].Key, metadata.Key, headerValues(recs[0], metadata.Key))
	}
	msgs := collectMessages(t, subscribeTail(t, tr, topic, transport.SubscribeOptions{}), 4)
	want := map[string]string{"ours": "order-7", "earlier": "order-8", "keyless": "", "empty": ""}
	for _, m := range msgs {
		got, has := m.Metadata[metadata.Key]
		if got != want[m.UUID] || has != (want[m.UUID] != "") {
			t.Errorf("message %s: metadata.Key %q (present %v), want %q", m.UUID, got, has, want[m.UUID])
		}
	}
}

// collectMessages acks and returns n messages from ch.
func collectMessages(t testing.TB, ch <-chan *message.Message, n int) []*message.Message {
	t.Helper()
	var got []*message.Message
	deadline := time.After(20 * time.Second)
	for len(got) < n {
		select {
		case m := <-ch:
			m.Ack()
			got = append(got, m)
		case <-deadline:
			t.Fatalf("got %d of %d messages", len(got), n)
		}
	}
	return got
}
