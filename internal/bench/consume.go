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
// (marking) each one; the measured part runs from the first message to the s.N-th.

// consumeTimeout bounds one consume row.
const consumeTimeout = 10 * time.Minute

var errShort = errors.New("consumed fewer messages than the topic holds")

// counter starts the meter at the first message and stops it at the n-th, and keeps
// the longest time between two messages (a stall shows there).
type counter struct {
	n     int64
	seen  atomic.Int64
	first sync.Once
	m     *meter
	done  chan struct{}
	last  atomic.Int64 // UnixNano of the latest message
}

func newCounter(n int, m *meter) *counter {
	return &counter{n: int64(n), m: m, done: make(chan struct{})}
}

func (c *counter) add(k int) {
	c.first.Do(c.m.start)
	now := time.Now().UnixNano()
	if prev := c.last.Swap(now); prev != 0 {
		for gap := now - prev; ; {
			longest := c.m.maxGap.Load()
			if gap <= longest || c.m.maxGap.CompareAndSwap(longest, gap) {
				break
			}
		}
	}
	if v := c.seen.Add(int64(k)); v >= c.n && v-int64(k) < c.n {
		c.m.stop()
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

// kafkaConfig is the SDK transport's configuration for a row: the defaults, with the
// row's prefetch and fetch wait when set.
func kafkaConfig(s spec) kafka.Config {
	cfg := kafka.Config{Brokers: s.Brokers, Prefetch: s.Prefetch}
	if s.FetchMaxWait > 0 {
		cfg.ClientOptions = []kgo.Opt{kgo.FetchMaxWait(s.FetchMaxWait)}
	}
	return cfg
}

// kafkaClient is an SDK client on the Kafka transport for a row.
func kafkaClient(s spec) (*pubsub.Client, error) {
	tr, err := kafka.New(context.Background(), kafkaConfig(s))
	if err != nil {
		return nil, err
	}
	c, err := pubsub.New(tr)
	if err != nil {
		return nil, errors.Join(err, tr.Close())
	}
	return c, nil
}

// consumeSDK reads through the whole client (router, middleware chain, raw codec)
// with Delivery.Concurrency s.Concurrency and an empty handler.
func consumeSDK(s spec, m *meter) ([]time.Duration, error) {
	c, err := kafkaClient(s)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	count := newCounter(s.N, m)
	topic := pubsub.NewTopic[[]byte](s.Topic, pubsub.WithCodec(codec.Raw))
	if err := pubsub.Subscribe(c, topic, s.Group, func(context.Context, *pubsub.Message[[]byte]) error {
		count.add(1)
		return nil
	}, pubsub.WithDelivery(pubsub.Delivery{Concurrency: s.Concurrency})); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	return nil, count.wait()
}

// consumeTransport reads through the SDK's Kafka transport alone, without the client,
// its router and its middleware: what the transport's own layer costs.
func consumeTransport(s spec, m *meter) ([]time.Duration, error) {
	tr, err := kafka.New(context.Background(), kafkaConfig(s))
	if err != nil {
		return nil, err
	}
	defer tr.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, err := tr.Subscribe(ctx, s.Topic, transport.SubscribeOptions{Group: s.Group, Concurrency: s.Concurrency})
	if err != nil {
		return nil, err
	}
	count := newCounter(s.N, m)
	go count.ackAll(sub.Messages())
	return nil, count.wait()
}

// watermillSubscriber is watermill-kafka's subscriber as its documentation sets it
// up, starting a new group at the oldest offset.
func watermillSubscriber(s spec) (*wkafka.Subscriber, error) {
	sc := wkafka.DefaultSaramaSubscriberConfig()
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	return wkafka.NewSubscriber(wkafka.SubscriberConfig{Brokers: s.Brokers, Unmarshaler: wkafka.DefaultMarshaler{},
		OverwriteSaramaConfig: sc, ConsumerGroup: s.Group}, nil)
}

// consumeWatermill reads watermill-kafka's subscriber's channel bare, acking each
// message at once.
func consumeWatermill(s spec, m *meter) ([]time.Duration, error) {
	sub, err := watermillSubscriber(s)
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
	count := newCounter(s.N, m)
	go count.ackAll(msgs)
	return nil, count.wait()
}

// consumeFranz polls franz-go in a group and counts the records: the ceiling, with
// no per-message work at all (auto-commit, as franz-go does by default).
func consumeFranz(s spec, m *meter) ([]time.Duration, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Brokers...), kgo.ConsumerGroup(s.Group), kgo.ConsumeTopics(s.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	count := newCounter(s.N, m)
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
