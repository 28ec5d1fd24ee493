package memory

import (
	"context"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/internal/lane"
)

// record is one message in a topic's log: the publisher's payload and metadata, which
// no one changes (see transport.Transport.Publish), read by every delivery.
type record struct {
	offset  int64
	uuid    string
	key     string  // the partition key (metadata.Key), "" for none; also in fields
	fields  []field // the metadata, each key once
	payload []byte
	size    int64
	time    time.Time // the Outgoing's publish time, or when Publish stored it: a Kafka record's timestamp
}

// field is one metadata entry of a record.
type field struct{ key, value string }

// newRecord is the record of a message given to Publish or PublishAsync.
func newRecord(msg *message.Message) *record {
	r := &record{uuid: msg.UUID, payload: msg.Payload, time: time.Now(), fields: make([]field, 0, len(msg.Metadata))}
	for k, v := range msg.Metadata {
		r.fields = append(r.fields, field{k, v})
	}
	r.key = msg.Metadata[metadata.Key]
	r.measure()
	return r
}

// newOutgoingRecord is the record of an Outgoing message, as newRecord would make it
// of the same message in Watermill's form. The id, the key and the header values are
// copied into one string (the caller reuses their bytes once the publish returns);
// the payload is kept as Publish keeps a message's. A metadata.Key header is ignored:
// the key is m.Key.
func newOutgoingRecord(m *transport.Outgoing) *record {
	n := len(m.ID) + len(m.Key)
	for _, h := range m.Headers {
		if h.Key != metadata.Key {
			n += len(h.Value)
		}
	}
	var text strings.Builder
	text.Grow(n)
	text.Write(m.ID)
	text.Write(m.Key)
	for _, h := range m.Headers {
		if h.Key != metadata.Key {
			text.Write(h.Value)
		}
	}
	s := text.String()
	r := &record{payload: m.Payload, time: m.Time, fields: make([]field, 0, len(m.Headers)+1)}
	if r.time.IsZero() {
		r.time = time.Now()
	}
	r.uuid, s = s[:len(m.ID)], s[len(m.ID):]
	r.key, s = s[:len(m.Key)], s[len(m.Key):]
	if r.key != "" {
		r.fields = append(r.fields, field{metadata.Key, r.key})
	}
	for _, h := range m.Headers {
		if h.Key == metadata.Key {
			continue // the key is m.Key, as the Kafka transport reads a record's
		}
		r.fields = append(r.fields, field{h.Key, s[:len(h.Value)]})
		s = s[len(h.Value):]
	}
	r.measure()
	return r
}

// measure sets r.size: the bytes of its payload, id and metadata, which the
// retention bounds count.
func (r *record) measure() {
	r.size = int64(len(r.payload) + len(r.uuid))
	for _, f := range r.fields {
		r.size += int64(len(f.key) + len(f.value))
	}
}

// has reports whether r's metadata holds key.
func (r *record) has(key string) bool {
	for _, f := range r.fields {
		if f.key == key {
			return true
		}
	}
	return false
}

// message returns a fresh Watermill message for one delivery, with metadata of its
// own, so that a handler that changes it changes nothing for redeliveries or other
// groups.
func (r *record) message(handled bool) *message.Message {
	msg := lane.NewMessage(r.uuid, r.payload, handled, len(r.fields))
	for _, f := range r.fields {
		msg.Metadata[f.key] = f.value
	}
	return msg
}

// read is the record as a reader returns it: a fresh message with its position.
func (r *record) read(ctx context.Context) *message.Message {
	msg := r.message(false)
	msg.SetContext(transport.WithPosition(ctx, transport.Position{Offset: r.offset, Time: r.time}))
	return msg
}
