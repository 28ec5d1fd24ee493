package kafka

import (
	"encoding/binary"
	"fmt"

	"github.com/IBM/sarama"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/metadata"
)

// toRecord turns a Watermill message into a Kafka record: the payload as the value,
// every metadata entry as a header, the message id in watermill-kafka's header (so
// watermill-kafka consumers read it too), and metadata.Key, when set, as the record
// key, returned too because it chooses the partition.
func toRecord(msg *message.Message) (*sarama.Record, string) {
	headers := make([]*sarama.RecordHeader, 0, len(msg.Metadata)+1)
	headers = append(headers, &sarama.RecordHeader{Key: []byte(wkafka.UUIDHeaderKey), Value: []byte(msg.UUID)})
	for k, v := range msg.Metadata {
		if k == wkafka.UUIDHeaderKey {
			continue // the message's own id wins over a copied header
		}
		headers = append(headers, &sarama.RecordHeader{Key: []byte(k), Value: []byte(v)})
	}
	rec := &sarama.Record{Value: msg.Payload, Headers: headers}
	key := msg.Metadata.Get(metadata.Key)
	if key != "" {
		rec.Key = []byte(key)
	}
	return rec, key
}

// recordSize is an upper bound of rec's encoded size, as sarama estimates it, for the
// max_message_bytes check and for splitting batches.
func recordSize(rec *sarama.Record) int {
	const overhead = 5*binary.MaxVarintLen32 + binary.MaxVarintLen64 + 1
	n := overhead + len(rec.Key) + len(rec.Value)
	for _, h := range rec.Headers {
		n += len(h.Key) + len(h.Value) + 2*binary.MaxVarintLen32
	}
	return n
}

// unmarshaler is the subscriber's Unmarshaler. It never fails: watermill-kafka
// answers an unmarshal error by re-reading the same record forever, stalling its
// partition, so anything a record holds becomes a message and a bad payload fails
// later, in the client's decode step, where it is dead-lettered.
type unmarshaler struct{}

func (unmarshaler) Unmarshal(rec *sarama.ConsumerMessage) (*message.Message, error) {
	md := make(message.Metadata, len(rec.Headers)+1)
	id := ""
	for _, h := range rec.Headers {
		if h == nil {
			continue
		}
		if string(h.Key) == wkafka.UUIDHeaderKey {
			id = string(h.Value)
			continue
		}
		md[string(h.Key)] = string(h.Value)
	}
	if id == "" {
		// A record from a producer outside pubsubkit: its position names it uniquely
		// and stays the same on redelivery.
		id = fmt.Sprintf("%s-%d-%d", rec.Topic, rec.Partition, rec.Offset)
	}
	if len(rec.Key) > 0 && md[metadata.Key] == "" {
		md[metadata.Key] = string(rec.Key)
	}
	msg := message.NewMessage(id, rec.Value)
	msg.Metadata = md
	return msg, nil
}
