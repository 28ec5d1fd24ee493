package main

import (
	"context"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/codec"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

// Every publishing row sends with acks=all and an idempotent producer, the
// durability the SDK gives, on topics of 3 partitions, and sends one message before
// the measured part, so that connecting and fetching metadata are not measured.
//
// The producers are set up alike, as the SDK's Kafka transport sets up franz-go by
// default (transport/kafka producerOptions): no linger (franz-go's own default is
// 10 ms; records published while a request is in flight are batched anyway), snappy
// compression, one produce request in flight per broker (franz-go's and sarama's
// idempotent default), at most 65,536 records and 64 MiB queued, 10 retries.
// sarama's AsyncProducer is given the same: no flush frequency or size (it sends as
// soon as it can, batching what arrives meanwhile), snappy, MaxOpenRequests 1.

// franzProducer is the raw franz-go producer of the publishing rows.
func franzProducer(s spec) (*kgo.Client, error) {
	return kgo.NewClient(kgo.SeedBrokers(s.Brokers...), kgo.DefaultProduceTopic(s.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
		kgo.ProducerBatchCompression(kgo.SnappyCompression()),
		kgo.MaxBufferedRecords(kafka.DefaultPublishQueue),
		kgo.MaxBufferedBytes(kafka.DefaultPublishQueueBytes),
		kgo.ProducerBatchMaxBytes(kafka.DefaultMaxMessageBytes),
		kgo.RecordRetries(kafka.DefaultProducerRetries))
}

// saramaConfig is sarama's configuration for an idempotent, acks=all producer set up
// as above.
func saramaConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V2_8_0_0
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Idempotent = true
	c.Producer.Compression = sarama.CompressionSnappy
	c.Producer.Retry.Max = kafka.DefaultProducerRetries
	c.Net.MaxOpenRequests = 1
	c.Producer.Return.Successes = true
	c.Producer.Return.Errors = true
	return c
}

// sdkTopic is the SDK's topic of a publishing row: the raw codec, so that the payload
// is the same bytes as the raw clients send.
func sdkTopic(s spec) pubsub.Topic[[]byte] {
	return pubsub.NewTopic[[]byte](s.Topic, pubsub.WithCodec(codec.Raw))
}

// warmSDK opens the SDK's client for a publishing row and publishes one message, so
// that the row measures publishing, not connecting and provisioning. The caller
// closes the client.
func warmSDK(s spec) (*pubsub.Client, pubsub.Topic[[]byte], []byte, error) {
	c, err := kafkaClient(s)
	if err != nil {
		return nil, pubsub.Topic[[]byte]{}, nil, err
	}
	topic, body := sdkTopic(s), payload(s.Size)
	if err := pubsub.Publish(context.Background(), c, topic, body); err != nil {
		c.Close()
		return nil, topic, nil, err
	}
	return c, topic, body, nil
}

// warmFranz is warmSDK for raw franz-go.
func warmFranz(s spec) (*kgo.Client, []byte, error) {
	cl, err := franzProducer(s)
	if err != nil {
		return nil, nil, err
	}
	body := payload(s.Size)
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: body}).FirstErr(); err != nil {
		cl.Close()
		return nil, nil, err
	}
	return cl, body, nil
}

// publishSDK: s.Callers goroutines call Publish, each waiting for its message.
func publishSDK(s spec, m *meter) ([]time.Duration, error) {
	ctx := context.Background()
	c, topic, body, err := warmSDK(s)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	m.start()
	lat, err := callers(s.Callers, s.N, func(_, _ int) error { return pubsub.Publish(ctx, c, topic, body) })
	m.stop()
	return lat, err
}

// publishFranz: s.Callers goroutines call ProduceSync with one record each.
func publishFranz(s spec, m *meter) ([]time.Duration, error) { return publishFranzOf(s, m, bareRecord) }

// publishFranzOf is the publish row of raw franz-go producing record(body) for each
// message.
func publishFranzOf(s spec, m *meter, record func(body []byte) *kgo.Record) ([]time.Duration, error) {
	cl, body, err := warmFranz(s)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx := context.Background()
	m.start()
	lat, err := callers(s.Callers, s.N, func(_, _ int) error { return cl.ProduceSync(ctx, record(body)).FirstErr() })
	m.stop()
	return lat, err
}
