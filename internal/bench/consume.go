package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/codec"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

// Every consume row reads s.N messages of a pre-filled topic in a new group, acking
// (marking) each one; the measured part runs from the first message to the last.

// consumeTimeout bounds one consume row.
const consumeTimeout = 10 * time.Minute

var errShort = errors.New("consumed fewer messages than the topic holds")

// counter calls start at the first message and closes done at the n-th.
type counter struct {
	n     int64
	seen  atomic.Int64
	first sync.Once
	start func()
	done  chan struct{}
}

func newCounter(n int, start func()) *counter {
	return &counter{n: int64(n), start: start, done: make(chan struct{})}
}

func (c *counter) add(k int) {
	c.first.Do(c.start)
	if v := c.seen.Add(int64(k)); v >= c.n && v-int64(k) < c.n {
		close(c.done)
	}
}

// ackAll acks every message of msgs and counts it.
func (c *counter) ackAll(msgs <-chan *message.Message) {
	for m := range msgs {
		m.Ack()
		c.add(1)
	}
}

func (c *counter) wait() error {
	select {
	case <-c.done:
		return nil
	case <-time.After(consumeTimeout):
		return fmt.Errorf("%w: %d of %d in %s", errShort, c.seen.Load(), c.n, consumeTimeout)
	}
}

func consumeSDK(s spec, start func()) ([]time.Duration, error) {
	c, err := kafkaClient(s)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	count := newCounter(s.N, start)
	topic := pubsub.NewTopic[[]byte](s.Topic, pubsub.WithCodec(codec.Raw))
	if err := pubsub.Subscribe(c, topic, s.Group, func(context.Context, *pubsub.Message[[]byte]) error {
		count.add(1)
		return nil
	}); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	return nil, count.wait()
}

func consumeWatermill(s spec, start func()) ([]time.Duration, error) {
	sc := wkafka.DefaultSaramaSubscriberConfig()
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	sub, err := wkafka.NewSubscriber(wkafka.SubscriberConfig{Brokers: s.Brokers, Unmarshaler: wkafka.DefaultMarshaler{},
		OverwriteSaramaConfig: sc, ConsumerGroup: s.Group}, nil)
	if err != nil {
		return nil, err
	}
	defer sub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs, err := sub.Subscribe(ctx, s.Topic)
	if err != nil {
		return nil, err
	}
	count := newCounter(s.N, start)
	go count.ackAll(msgs)
	return nil, count.wait()
}

type saramaHandler struct{ count *counter }

func (saramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h saramaHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		sess.MarkMessage(m, "")
		h.count.add(1)
	}
	return nil
}

func consumeSarama(s spec, start func()) ([]time.Duration, error) {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	g, err := sarama.NewConsumerGroup(s.Brokers, s.Group, cfg)
	if err != nil {
		return nil, err
	}
	defer g.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	count := newCounter(s.N, start)
	go func() {
		for ctx.Err() == nil {
			if err := g.Consume(ctx, []string{s.Topic}, saramaHandler{count}); err != nil {
				return
			}
		}
	}()
	return nil, count.wait()
}

func consumeFranz(s spec, start func()) ([]time.Duration, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Brokers...), kgo.ConsumerGroup(s.Group), kgo.ConsumeTopics(s.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	count := newCounter(s.N, start)
	go func() {
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			if n := fs.NumRecords(); n > 0 {
				count.add(n)
			}
		}
	}()
	return nil, count.wait()
}

// consumeTransport reads through the SDK's Kafka transport alone, without the client,
// its router and its middleware: what the transport's own layer costs.
func consumeTransport(s spec, start func()) ([]time.Duration, error) {
	tr, err := kafka.New(context.Background(), kafkaConfig(s))
	if err != nil {
		return nil, err
	}
	defer tr.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, err := tr.Subscribe(ctx, s.Topic, transport.SubscribeOptions{Group: s.Group})
	if err != nil {
		return nil, err
	}
	count := newCounter(s.N, start)
	go count.ackAll(sub.Messages())
	return nil, count.wait()
}
