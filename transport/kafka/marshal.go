package kafka

import (
	"fmt"

	"github.com/IBM/sarama"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/metadata"
)

// marshal turns a Watermill message into a Kafka record: the payload as the value,
// every metadata entry as a header, the message id in watermill-kafka's header (so
// watermill-kafka consumers read it too), and metadata.Key, when set, as the record
// key that chooses the partition.
func marshal(topic string, msg *message.Message) *sarama.ProducerMessage {
	headers := make([]sarama.RecordHeader, 0, len(msg.Metadata)+1)
	headers = append(headers, sarama.RecordHeader{Key: []byte(wkafka.UUIDHeaderKey), Value: []byte(msg.UUID)})
	for k, v := range msg.Metadata {
		if k == wkafka.UUIDHeaderKey {
			continue // the message's own id wins over a copied header
		}
		headers = append(headers, sarama.RecordHeader{Key: []byte(k), Value: []byte(v)})
	}
	pm := &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(msg.Payload), Headers: headers}
	if key := msg.Metadata.Get(metadata.Key); key != "" {
		pm.Key = sarama.StringEncoder(key)
	}
	return pm
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
