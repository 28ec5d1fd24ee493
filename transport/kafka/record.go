package kafka

import (
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pubsubkit/pubsub/metadata"
)

// UUIDHeader is the record header that carries a message's id: watermill-kafka's, so
// that services still on watermill-kafka read our records and we read theirs.
const UUIDHeader = "_watermill_message_uuid"

// toRecord turns a Watermill message into a Kafka record: the payload as the value,
// metadata.Key, when set, as the record key (which chooses the partition), the
// message id in UUIDHeader and every other metadata entry as a header.
func toRecord(topic string, msg *message.Message) *kgo.Record {
	r := &kgo.Record{Topic: topic, Value: msg.Payload, Headers: make([]kgo.RecordHeader, 0, len(msg.Metadata)+1)}
	r.Headers = append(r.Headers, kgo.RecordHeader{Key: UUIDHeader, Value: []byte(msg.UUID)})
	for k, v := range msg.Metadata {
		switch k {
		case metadata.Key:
			if v != "" {
				r.Key = []byte(v)
			}
		case UUIDHeader: // the message's own id wins over a copied header
		default:
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
	}
	return r
}

// recordSize is an upper bound of r's encoded size, for the max_message_bytes check.
func recordSize(r *kgo.Record) int {
	n := 32 + len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value) + 10
	}
	return n
}

// toMessage turns a record into a Watermill message for one delivery. It never fails:
// anything a record holds becomes a message, and a bad payload fails later, in the
// client's decode step, where it is dead-lettered instead of stalling its partition.
// The payload is the record's value, shared by every delivery of the record.
func toMessage(r *kgo.Record) *message.Message {
	md := make(message.Metadata, len(r.Headers)+1)
	id := ""
	for _, h := range r.Headers {
		if h.Key == UUIDHeader {
			id = string(h.Value)
			continue
		}
		md[h.Key] = string(h.Value)
	}
	if id == "" {
		// A record from a producer outside pubsubkit: its position names it uniquely
		// and stays the same on redelivery.
		id = r.Topic + "-" + strconv.Itoa(int(r.Partition)) + "-" + strconv.FormatInt(r.Offset, 10)
	}
	if len(r.Key) > 0 {
		md[metadata.Key] = string(r.Key)
	}
	msg := message.NewMessage(id, r.Value)
	msg.Metadata = md
	return msg
}
