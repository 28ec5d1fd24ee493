package main

import (
	"context"
	"errors"
	"time"

	"github.com/IBM/sarama"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/codec"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

// Every publish row sends with acks=all and an idempotent producer, the durability
// the SDK gives; each caller sends one message and waits for its acknowledgement
// before the next, and the latency is that wait. One message is sent before the
// measured part, so connecting and fetching metadata are not measured.

// kafkaConfig is the SDK transport's configuration for a row: the defaults, with the
// row's prefetch (0: the default).
func kafkaConfig(s spec) kafka.Config {
	return kafka.Config{Brokers: s.Brokers, Prefetch: s.Prefetch}
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

// durableSarama is sarama's configuration for an idempotent, acks=all producer.
func durableSarama() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V2_8_0_0
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Idempotent = true
	c.Net.MaxOpenRequests = 1
	c.Producer.Return.Successes = true
	c.Producer.Return.Errors = true
	return c
}

func publishSDK(s spec, start func()) ([]time.Duration, error) {
	ctx := context.Background()
	c, err := kafkaClient(s)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	topic := pubsub.NewTopic[[]byte](s.Topic, pubsub.WithCodec(codec.Raw))
	body := payload(s.Size)
	if err := pubsub.Publish(ctx, c, topic, body); err != nil {
		return nil, err
	}
	start()
	return callers(s.Callers, s.N, func(_, _ int) error { return pubsub.Publish(ctx, c, topic, body) })
}

func publishWatermill(s spec, start func()) ([]time.Duration, error) {
	sc := wkafka.DefaultSaramaSyncPublisherConfig()
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Idempotent = true
	sc.Net.MaxOpenRequests = 1
	pub, err := wkafka.NewPublisher(wkafka.PublisherConfig{Brokers: s.Brokers, Marshaler: wkafka.DefaultMarshaler{}, OverwriteSaramaConfig: sc}, nil)
	if err != nil {
		return nil, err
	}
	defer pub.Close()
	body := payload(s.Size)
	send := func(_, _ int) error { return pub.Publish(s.Topic, message.NewMessage(uuid.NewString(), body)) }
	if err := send(0, 0); err != nil {
		return nil, err
	}
	start()
	return callers(s.Callers, s.N, send)
}

func publishSarama(s spec, start func()) ([]time.Duration, error) {
	p, err := sarama.NewAsyncProducer(s.Brokers, durableSarama())
	if err != nil {
		return nil, err
	}
	// Each message carries the channel its caller waits on.
	done := make(chan struct{})
	go func() {
		defer close(done)
		succ, errs := p.Successes(), p.Errors()
		for succ != nil || errs != nil {
			select {
			case m, ok := <-succ:
				if !ok {
					succ = nil
					continue
				}
				m.Metadata.(chan error) <- nil
			case e, ok := <-errs:
				if !ok {
					errs = nil
					continue
				}
				e.Msg.Metadata.(chan error) <- e.Err
			}
		}
	}()
	defer func() { p.AsyncClose(); <-done }()
	body := payload(s.Size)
	send := func(_, _ int) error {
		ack := make(chan error, 1)
		p.Input() <- &sarama.ProducerMessage{Topic: s.Topic, Value: sarama.ByteEncoder(body), Metadata: ack}
		return <-ack
	}
	if err := send(0, 0); err != nil {
		return nil, err
	}
	start()
	return callers(s.Callers, s.N, send)
}

func publishFranz(s spec, start func()) ([]time.Duration, error) {
	// franz-go's defaults are acks=all and idempotent.
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Brokers...), kgo.DefaultProduceTopic(s.Topic))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	body := payload(s.Size)
	ctx := context.Background()
	send := func(_, _ int) error {
		return cl.ProduceSync(ctx, &kgo.Record{Value: body}).FirstErr()
	}
	if err := send(0, 0); err != nil {
		return nil, err
	}
	start()
	return callers(s.Callers, s.N, send)
}
