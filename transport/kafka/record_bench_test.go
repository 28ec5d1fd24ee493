package kafka

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/metadata"
)

// benchMessage is a message as the client publishes one: an id, a 1 KiB payload and
// the metadata of a typed publish with tracing.
func benchMessage() *message.Message {
	m := message.NewMessage("0193c2a4-6b1e-7c3d-9f00-2b5e8a1d4c77", make([]byte, 1024))
	m.Metadata = message.Metadata{
		metadata.ContentType:   "application/json",
		metadata.MessageType:   "orders.OrderPlaced",
		metadata.PublishedAt:   metadata.FormatTime(time.Unix(1764680000, 123456789)),
		metadata.Key:           "order-12345",
		metadata.CorrelationID: "0193c2a4-6b1e-7c3d-9f00-2b5e8a1d4c78",
		metadata.TraceParent:   "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	}
	return m
}

func BenchmarkToRecord(b *testing.B) {
	m := benchMessage()
	b.ReportAllocs()
	for b.Loop() {
		_ = toRecord("orders", m)
	}
}

func BenchmarkToMessage(b *testing.B) {
	r := toRecord("orders", benchMessage())
	r.Partition, r.Offset = 1, 42
	b.ReportAllocs()
	for b.Loop() {
		_ = toMessage(r, false)
	}
}

// TestConversionRoundTrip: a message turned into a record and back keeps its id,
// payload and metadata.
func TestConversionRoundTrip(t *testing.T) {
	m := benchMessage()
	m.Metadata["tag"], m.Metadata["tag[1]"], m.Metadata["tag[2]"] = "a", "b", "c"
	back := toMessage(toRecord("orders", m), false)
	if back.UUID != m.UUID || string(back.Payload) != string(m.Payload) || len(back.Metadata) != len(m.Metadata) {
		t.Fatalf("round trip: %s %d bytes %v, want %s %d bytes %v", back.UUID, len(back.Payload), back.Metadata, m.UUID, len(m.Payload), m.Metadata)
	}
	for k, v := range m.Metadata {
		if back.Metadata[k] != v {
			t.Errorf("round trip: %s = %q, want %q", k, back.Metadata[k], v)
		}
	}
}
