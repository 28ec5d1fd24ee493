package pubsub_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/metadata"
)

// TestKnativeDeadLetterShape: Knative dead letters carry the reason cut as Knative's
// broker cuts it (at most 1,024 bytes, exactly 1,024 when the cut falls between
// characters, never a broken character and nothing appended), and always a ce_time
// and a content-type: a library-published message's publish time and content type;
// for a record from another producer with neither, a time of the dead-lettering and
// application/octet-stream; a structured event without a time gets one in its
// envelope.
func TestKnativeDeadLetterShape(t *testing.T) {
	t.Parallel()
	h, tr := foreignFixture(t)
	topic := pubsub.NewTopic[reading](kafkatest.Topic("knative-shape"))
	must(t, pubsub.Subscribe(h.Client, topic, "store", func(_ context.Context, m *pubsub.Message[reading]) error {
		if m.Payload.Sensor == "multibyte" { // 'é' is 2 bytes: byte 1,024 falls inside one
			return pubsub.Permanent(errors.New("x" + strings.Repeat("é", 1500)))
		}
		return pubsub.Permanent(errors.New(strings.Repeat("a", 3000)))
	}, pubsub.WithKnativeDeadLetters()))

	must(t, pubsub.Publish(context.Background(), h.Client, topic, reading{Sensor: "ours"}))
	foreign := message.NewMessage("", []byte(`{"sensor":"multibyte"}`)) // no content-type, no time
	must(t, tr.Publish(topic.Name(), foreign))
	structured := message.NewMessage("", []byte(`{"specversion":"1.0","id":"ev-k","source":"/s","type":"t","data":{"sensor":"s"}}`))
	structured.Metadata[metadata.ContentType] = metadata.StructuredCloudEvent
	must(t, tr.Publish(topic.Name(), structured))

	for _, e := range h.WaitDeadLettered(topic.Name(), "store", 3) {
		md := e.Message.Metadata
		if metadata.ContentTypeOf(md) == metadata.StructuredCloudEvent {
			var env map[string]any
			if err := json.Unmarshal(e.Message.Payload, &env); err != nil {
				t.Fatal(err)
			}
			if tm, _ := env["time"].(string); tm == "" {
				t.Errorf("structured dead letter without a time: %s", e.Message.Payload)
			}
			data, _ := base64.StdEncoding.DecodeString(env["knativeerrordata"].(string))
			if len(data) != 1024 {
				t.Errorf("structured dead letter: knativeerrordata decodes to %d bytes, want 1024", len(data))
			}
			continue
		}
		data, err := base64.StdEncoding.DecodeString(md[metadata.KnativeErrorData])
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := metadata.ParseTime(md[metadata.CloudEventsTime]); !ok {
			t.Errorf("dead letter ce_time %q is not a time", md[metadata.CloudEventsTime])
		}
		switch md[metadata.PublishedAt] {
		case "": // the foreign record
			if md[metadata.ContentType] != "application/octet-stream" {
				t.Errorf("foreign record's dead letter: content-type %q, want application/octet-stream", md[metadata.ContentType])
			}
			if !utf8.Valid(data) || len(data) != 1023 || strings.HasSuffix(string(data), "…") {
				t.Errorf("knativeerrordata: %d bytes (valid UTF-8 %t), want 1023: 'x' and 511 whole 'é'", len(data), utf8.Valid(data))
			}
		default: // ours
			if md[metadata.CloudEventsTime] != md[metadata.PublishedAt] {
				t.Errorf("ce_time %q, want the publish time %q", md[metadata.CloudEventsTime], md[metadata.PublishedAt])
			}
			if md[metadata.ContentType] != "application/json" {
				t.Errorf("content-type %q, want application/json", md[metadata.ContentType])
			}
			if len(data) != 1024 {
				t.Errorf("knativeerrordata decodes to %d bytes, want exactly 1024", len(data))
			}
		}
	}
}
