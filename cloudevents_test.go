package pubsub_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/pubsubtest"
	"github.com/pubsubkit/pubsub/transport/memory"
)

type reading struct {
	Sensor string  `json:"sensor"`
	Value  float64 `json:"value"`
}

// foreignFixture is a harness on a memory transport that the test can also write raw
// records to, as a producer outside pubsubkit would.
func foreignFixture(t *testing.T) (*pubsubtest.Harness, *memory.Transport) {
	tr, err := memory.New(memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return pubsubtest.NewOn(t, tr), tr
}

// collect subscribes group to topic and returns a channel of what it handles.
func collect[T any](t *testing.T, h *pubsubtest.Harness, topic pubsub.Topic[T], group string) <-chan *pubsub.Message[T] {
	t.Helper()
	got := make(chan *pubsub.Message[T], 16)
	must(t, pubsub.Subscribe(h.Client, topic, group, func(_ context.Context, m *pubsub.Message[T]) error {
		got <- m
		return nil
	}))
	return got
}

func next[T any](t *testing.T, ch <-chan *pubsub.Message[T]) *pubsub.Message[T] {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5 s")
		return nil
	}
}

// TestCloudEventsBinaryModePublished: WithCloudEvents writes the binding's binary-mode
// headers, and a reader sees the event's id and time.
func TestCloudEventsBinaryModePublished(t *testing.T) {
	h, _ := foreignFixture(t)
	topic := pubsub.NewTopic[reading]("readings", pubsub.WithCloudEvents("/sensors/hall"))
	got := collect(t, h, topic, "store")
	must(t, pubsub.Publish(context.Background(), h.Client, topic, reading{Sensor: "t1", Value: 21.5}))
	m := next(t, got)
	md := m.Metadata
	if md[metadata.CloudEventsSpec] != "1.0" || md[metadata.CloudEventsID] != m.ID || md[metadata.CloudEventsSource] != "/sensors/hall" ||
		!strings.HasSuffix(md[metadata.CloudEventsType], "reading") || md[metadata.CloudEventsTime] == "" {
		t.Errorf("binary-mode attributes: %v (id %s)", md, m.ID)
	}
	ceTime, err := time.Parse(time.RFC3339Nano, md[metadata.CloudEventsTime])
	if err != nil || !ceTime.Equal(m.PublishedAt) {
		t.Errorf("ce_time %q (%v) and PublishedAt %v disagree", md[metadata.CloudEventsTime], err, m.PublishedAt)
	}
	if m.Payload.Sensor != "t1" {
		t.Errorf("payload %+v", m.Payload)
	}
}

// TestCloudEventsReadInBothModes: a foreign binary-mode event and a structured-mode
// one are read as events: id, time, key from partitionkey, attributes in Metadata,
// payload from the data, never from the envelope.
func TestCloudEventsReadInBothModes(t *testing.T) {
	h, tr := foreignFixture(t)
	topic := pubsub.NewTopic[reading]("readings")
	got := collect(t, h, topic, "store")

	binary := message.NewMessage("wm-1", []byte(`{"sensor":"b","value":1}`))
	binary.Metadata = message.Metadata{"ce_specversion": "1.0", "ce_id": "evt-b", "ce_source": "/py", "ce_type": "com.example.reading",
		"ce_time": "2026-11-30T10:00:00.5Z", "ce_partitionkey": "hall", "ce_traceparent": "x", "content-type": "application/json"}
	must(t, tr.Publish(topic.Name(), binary))
	m := next(t, got)
	if m.ID != "evt-b" || m.Key != "hall" || m.Payload.Sensor != "b" || m.Metadata["ce_type"] != "com.example.reading" ||
		!m.PublishedAt.Equal(time.Date(2026, 11, 30, 10, 0, 0, 5e8, time.UTC)) {
		t.Errorf("binary mode read as id %q key %q payload %+v time %v metadata %v", m.ID, m.Key, m.Payload, m.PublishedAt, m.Metadata)
	}

	envelope := `{"specversion":"1.0","id":"evt-s","source":"/rb","type":"com.example.reading","time":"2026-11-30T11:00:00Z",
		"datacontenttype":"application/json","partitionkey":"roof","data":{"sensor":"s","value":2}}`
	structured := message.NewMessage("wm-2", []byte(envelope))
	structured.Metadata = message.Metadata{"content-type": "application/cloudevents+json; charset=utf-8"}
	must(t, tr.Publish(topic.Name(), structured))
	m = next(t, got)
	if m.ID != "evt-s" || m.Key != "roof" || m.Payload != (reading{Sensor: "s", Value: 2}) || m.Metadata["ce_source"] != "/rb" ||
		!m.PublishedAt.Equal(time.Date(2026, 11, 30, 11, 0, 0, 0, time.UTC)) {
		t.Errorf("structured mode read as id %q key %q payload %+v time %v metadata %v", m.ID, m.Key, m.Payload, m.PublishedAt, m.Metadata)
	}
}

// TestCloudEventsWrongContentTypeDeadLettered: an event whose data is not what the
// topic's codec reads is a permanent failure, not a payload decoded by luck.
func TestCloudEventsWrongContentTypeDeadLettered(t *testing.T) {
	h, tr := foreignFixture(t)
	topic := pubsub.NewTopic[reading]("readings")
	collect(t, h, topic, "store")
	msg := message.NewMessage("wm-3", []byte(`<reading/>`))
	msg.Metadata = message.Metadata{"ce_specversion": "1.0", "ce_id": "evt-x", "content-type": "application/xml"}
	must(t, tr.Publish(topic.Name(), msg))
	dead := h.WaitDeadLettered(topic.Name(), "store", 1)
	if r := dead[0].Message.Metadata.Get(metadata.DeadLetterReason); !strings.Contains(r, "application/xml") ||
		dead[0].Message.Metadata.Get(metadata.DeadLetterPermanent) != "true" {
		t.Errorf("reason %q, permanent %q", r, dead[0].Message.Metadata.Get(metadata.DeadLetterPermanent))
	}
}

// TestKnativeDeadLetters: with WithKnativeDeadLetters a failed CloudEvent reaches the
// dead-letter topic as a CloudEvent with Knative's error extensions, in either mode,
// and DeadLetters still lists it.
func TestKnativeDeadLetters(t *testing.T) {
	h, tr := foreignFixture(t)
	topic := pubsub.NewTopic[reading]("readings", pubsub.WithCloudEvents("/sensors"))
	must(t, pubsub.Subscribe(h.Client, topic, "store", func(_ context.Context, m *pubsub.Message[reading]) error {
		return pubsub.Permanent(errors.New("sensor " + m.Payload.Sensor + " is unknown"))
	}, pubsub.WithKnativeDeadLetters()))
	must(t, pubsub.Publish(context.Background(), h.Client, topic, reading{Sensor: "bin"}))
	structured := message.NewMessage("wm-s", []byte(`{"specversion":"1.0","id":"evt-s","source":"/rb","type":"t","data":{"sensor":"env"}}`))
	structured.Metadata = message.Metadata{"content-type": "application/cloudevents+json"}
	must(t, tr.Publish(topic.Name(), structured))
	dead := h.WaitDeadLettered(topic.Name(), "store", 2)
	for _, e := range dead {
		d := e.Message
		if metadata.ContentTypeOf(d.Metadata) == metadata.StructuredCloudEvent {
			var env map[string]any
			if err := json.Unmarshal(d.Payload, &env); err != nil {
				t.Fatal(err)
			}
			data, _ := base64.StdEncoding.DecodeString(env["knativeerrordata"].(string))
			if env["id"] != "evt-s" || env["knativeerrordest"] != "pubsub:readings/store" || env["knativeerrorcode"] != "422" ||
				!strings.Contains(string(data), "sensor env is unknown") {
				t.Errorf("structured Knative dead letter: %s", d.Payload)
			}
			continue
		}
		md := d.Metadata
		data, _ := base64.StdEncoding.DecodeString(md[metadata.KnativeErrorData])
		if md[metadata.CloudEventsSpec] != "1.0" || md[metadata.CloudEventsID] != d.UUID || md[metadata.CloudEventsSource] != "/sensors" ||
			md[metadata.KnativeErrorDest] != "pubsub:readings/store" || md[metadata.KnativeErrorCode] != "422" ||
			!strings.Contains(string(data), "sensor bin is unknown") {
			t.Errorf("binary Knative dead letter: %v", md)
		}
	}
	letters, err := h.Client.DeadLetters(context.Background(), topic.Name(), "store")
	if err != nil || len(letters) != 2 {
		t.Errorf("DeadLetters: %d, %v", len(letters), err)
	}
}

// TestForeignRecordsCorrelation: a record from another producer has one correlation
// id in every group and on every redelivery: its correlation header when it has one,
// otherwise its identity; its PublishedAt is the record's time.
func TestForeignRecordsCorrelation(t *testing.T) {
	h, tr := foreignFixture(t)
	topic := pubsub.NewTopic[reading]("readings")
	var mu sync.Mutex
	cids := map[string][]string{} // payload sensor → correlation ids seen
	var published []time.Time
	handler := func(fail bool) pubsub.Handler[reading] {
		failed := map[string]bool{}
		return func(_ context.Context, m *pubsub.Message[reading]) error {
			mu.Lock()
			defer mu.Unlock()
			cids[m.Payload.Sensor] = append(cids[m.Payload.Sensor], m.CorrelationID)
			published = append(published, m.PublishedAt)
			if fail && !failed[m.Payload.Sensor] {
				failed[m.Payload.Sensor] = true
				return errors.New("once")
			}
			return nil
		}
	}
	must(t, pubsub.Subscribe(h.Client, topic, "a", handler(true), pubsub.WithDelivery(pubsub.Delivery{Retry: 2, BackoffDelay: time.Millisecond})))
	must(t, pubsub.Subscribe(h.Client, topic, "b", handler(false)))
	before := time.Now()
	plain := message.NewMessage("", []byte(`{"sensor":"plain"}`))
	must(t, tr.Publish(topic.Name(), plain))
	tagged := message.NewMessage("", []byte(`{"sensor":"tagged"}`))
	tagged.Metadata = message.Metadata{"x-correlation-id": "order-42"}
	must(t, tr.Publish(topic.Name(), tagged))
	h.WaitHandled(topic.Name(), "a", 2)
	h.WaitHandled(topic.Name(), "b", 2)
	mu.Lock()
	defer mu.Unlock()
	for sensor, ids := range cids {
		if len(ids) != 3 { // group a twice (one retry), group b once
			t.Errorf("%s handled %d times: %v", sensor, len(ids), ids)
		}
		for _, id := range ids {
			if id == "" || id != ids[0] {
				t.Errorf("%s: correlation ids disagree: %v", sensor, ids)
			}
		}
	}
	if ids := cids["tagged"]; len(ids) > 0 && ids[0] != "order-42" {
		t.Errorf("the x-correlation-id header was not used: %v", ids)
	}
	for _, p := range published {
		if p.Before(before.Add(-time.Second)) || p.After(time.Now()) {
			t.Errorf("PublishedAt %v is not the record's time (published after %v)", p, before)
		}
	}
}
