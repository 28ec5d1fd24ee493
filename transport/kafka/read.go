package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/transport"
)

// ReadAll returns the records topic holds now, partition by partition, oldest first,
// read with a plain consumer: no group, no committed offset. It stops at each
// partition's end as it was when ReadAll began.
func (t *Transport) ReadAll(ctx context.Context, topic string) ([]*message.Message, error) {
	if err := t.checkOpen(); err != nil {
		return nil, err
	}
	parts, err := t.client.Partitions(topic)
	if errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kafka: reading %q: %w", topic, err)
	}
	consumer, err := sarama.NewConsumerFromClient(t.client)
	if err != nil {
		return nil, fmt.Errorf("kafka: reading %q: %w", topic, err)
	}
	defer consumer.Close()
	var msgs []*message.Message
	for _, p := range parts {
		oldest, err := t.client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			return nil, fmt.Errorf("kafka: reading %q partition %d: %w", topic, p, err)
		}
		end, err := t.client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return nil, fmt.Errorf("kafka: reading %q partition %d: %w", topic, p, err)
		}
		if end <= oldest {
			continue
		}
		got, err := readPartition(ctx, consumer, topic, p, oldest, end)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, got...)
	}
	return msgs, nil
}

func readPartition(ctx context.Context, consumer sarama.Consumer, topic string, p int32, from, end int64) ([]*message.Message, error) {
	pc, err := consumer.ConsumePartition(topic, p, from)
	if err != nil {
		return nil, fmt.Errorf("kafka: reading %q partition %d: %w", topic, p, err)
	}
	defer pc.Close()
	var msgs []*message.Message
	for {
		select {
		case rec, ok := <-pc.Messages():
			if !ok {
				return nil, fmt.Errorf("kafka: reading %q partition %d: the consumer stopped", topic, p)
			}
			msg, _ := unmarshaler{}.Unmarshal(rec)
			msg.SetContext(transport.WithPosition(ctx, transport.Position{Partition: p, Offset: rec.Offset}))
			msgs = append(msgs, msg)
			if rec.Offset >= end-1 {
				return msgs, nil
			}
		case err := <-pc.Errors():
			return nil, fmt.Errorf("kafka: reading %q partition %d: %w", topic, p, err)
		case <-ctx.Done():
			return nil, fmt.Errorf("kafka: reading %q partition %d: %w", topic, p, ctx.Err())
		}
	}
}
