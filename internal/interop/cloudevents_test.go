package interop

import (
	"context"
	"testing"
	"time"

	pubsub "github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

// TestCloudEventsFromLibrdkafka sends CloudEvents from librdkafka in binary mode
// (ce_ headers, content-type application/json) and in structured mode (content-type
// application/cloudevents+json, the event as a JSON envelope): Message.ID is the
// event's id, PublishedAt its time, Metadata holds its attributes, the payload is
// decoded from its data (never from the envelope), a binary event's correlation id is
// its id, and its partitionkey is the key of
// a record that has none.
func TestCloudEventsFromLibrdkafka(t *testing.T) {
	t.Parallel()
	requirePython(t)
	cluster := kafkatest.New(t)
	topic := kafkatest.Topic("orders-ce")
	createTopic(t, cluster, topic, 3)
	client := openClient(t, cluster, "")
	s := newSink[value]()
	must(t, pubsub.Subscribe(client, pubsub.NewTopic[value](topic), "g", s.handle))
	run(t, client)

	const at = "2026-01-02T03:04:05.123456789Z"
	wantAt, err := time.Parse(time.RFC3339Nano, at)
	must(t, err)
	binary := func(n int, id, key string, extra ...[2]string) record {
		r := record{Topic: topic, Value: str(value{N: n}.json()), Headers: append([][2]string{
			{"ce_specversion", "1.0"}, {"ce_id", id}, {"ce_source", "/python/orders"},
			{"ce_type", "com.example.order.placed"}, {"ce_time", at}, {"content-type", "application/json"},
		}, extra...)}
		if key != "" {
			r.Key = str(key)
		}
		return r
	}
	structured := record{Topic: topic, Headers: [][2]string{{"content-type", metadata.StructuredCloudEvent}},
		Value: str(`{"specversion":"1.0","id":"evt-3","source":"/python/orders","type":"com.example.order.placed",` +
			`"time":"` + at + `","datacontenttype":"application/json","partitionkey":"pk-3","subject":"order-3",` +
			`"data":{"n":3}}`)}
	produceAll(t, producer{Config: rdkafka(cluster, nil), Records: []record{
		binary(1, "evt-1", "k-1"),
		binary(2, "evt-2", "", [2]string{"ce_partitionkey", "pk-2"}),
		structured,
	}})

	got := s.wait(t, "three CloudEvents", atLeast[value](3))
	byN := map[int]*pubsub.Message[value]{}
	for _, m := range got {
		byN[m.Payload.N] = m
	}
	for n, want := range map[int]struct{ id, key string }{1: {"evt-1", "k-1"}, 2: {"evt-2", "pk-2"}, 3: {"evt-3", "pk-3"}} {
		m := byN[n]
		if m == nil {
			t.Errorf("event %s: no message with n=%d (payload decoded from the wrong place?); got %+v", want.id, n, got)
			continue
		}
		if m.ID != want.id || m.Key != want.key {
			t.Errorf("n=%d: ID %q Key %q, want %q %q", n, m.ID, m.Key, want.id, want.key)
		}
		// A binary-mode event's correlation id is its ce_id header; a structured one's
		// id sits in the envelope, which the correlation step does not read, so it gets
		// the record's identity.
		if (n < 3 && m.CorrelationID != want.id) || m.CorrelationID == "" {
			t.Errorf("n=%d: CorrelationID %q, want %q", n, m.CorrelationID, want.id)
		}
		if !m.PublishedAt.Equal(wantAt) {
			t.Errorf("n=%d: PublishedAt %v, want ce_time %v", n, m.PublishedAt, wantAt)
		}
		if m.Payload.ID != "" {
			t.Errorf("n=%d: the payload has the envelope's id %q: the event, not its data, was decoded", n, m.Payload.ID)
		}
		for k, v := range map[string]string{metadata.CloudEventsType: "com.example.order.placed",
			metadata.CloudEventsSource: "/python/orders", metadata.CloudEventsID: want.id, metadata.CloudEventsSpec: "1.0"} {
			if m.Metadata[k] != v {
				t.Errorf("n=%d: Metadata[%s] = %q, want %q (all: %v)", n, k, m.Metadata[k], v, m.Metadata)
			}
		}
	}
	if m := byN[3]; m != nil && m.Metadata["ce_subject"] != "order-3" {
		t.Errorf("structured event: Metadata[ce_subject] = %q, want order-3 (all: %v)", m.Metadata["ce_subject"], m.Metadata)
	}
}

// TestCloudEventsToLibrdkafka publishes with WithCloudEvents and reads the record with
// librdkafka: a binary-mode CloudEvent, its ce_id the message id, with source, type,
// time and the standard content-type, and the payload as the record's value.
func TestCloudEventsToLibrdkafka(t *testing.T) {
	t.Parallel()
	requirePython(t)
	cluster := kafkatest.New(t)
	topic := kafkatest.Topic("to-rdkafka-ce")
	client := openClient(t, cluster, "partitions=1")
	before := time.Now()
	must(t, pubsub.Publish(context.Background(), client, pubsub.NewTopic[value](topic, pubsub.WithCloudEvents("/orders-svc")),
		value{N: 5}, pubsub.WithMessageKey("k-5")))

	r := consumeAll(t, rdkafka(cluster, nil), 1, topic)[0]
	if r.value() != (value{N: 5}).json() || r.key() != "k-5" {
		t.Errorf("record value %q key %q, want %s k-5", r.value(), r.key(), value{N: 5}.json())
	}
	one := func(name string) string {
		vs := r.header(name)
		if len(vs) != 1 || vs[0] == "" {
			t.Errorf("header %s has values %q, want one (headers %v)", name, vs, r.headerNames())
			return ""
		}
		return vs[0]
	}
	if one(metadata.CloudEventsSpec) != "1.0" || one(metadata.CloudEventsSource) != "/orders-svc" ||
		one(metadata.ContentType) != "application/json" {
		t.Errorf("CloudEvents headers: specversion %q source %q content-type %q", r.header(metadata.CloudEventsSpec),
			r.header(metadata.CloudEventsSource), r.header(metadata.ContentType))
	}
	if id := one(metadata.CloudEventsID); id != one(kafka.UUIDHeader) {
		t.Errorf("ce_id %q, want the message id %q", id, r.header(kafka.UUIDHeader))
	}
	one(metadata.CloudEventsType)
	if at, ok := metadata.ParseTime(one(metadata.CloudEventsTime)); !ok || at.Before(before.Add(-time.Second)) || at.After(time.Now()) {
		t.Errorf("ce_time %q is not the publish time (after %v)", r.header(metadata.CloudEventsTime), before)
	}
}
