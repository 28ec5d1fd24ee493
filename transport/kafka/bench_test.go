package kafka_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/codec"
	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

// benchPublishers is the number of goroutines publishing at once.
const benchPublishers = 16

var benchPayload = []byte(strings.Repeat("x", 1024))

// BenchmarkPublish16 publishes b.N 1 KiB messages from 16 goroutines, each waiting
// for its own message's acknowledgement before the next, to one 3-partition topic of
// one in-process cluster shared by every sub-benchmark of the run:
//
//   - sdk: pubsub.Publish on the Kafka transport (acks=all, idempotent);
//   - watermill-kafka: watermill-kafka's Publisher with its defaults (acks=1);
//   - watermill-kafka-acks-all: the same with acks=all, the durability the SDK gives;
//   - sarama-async: raw sarama AsyncProducer (acks=all, idempotent), fed without
//     waiting for acknowledgements: the ceiling of the client and cluster, not a
//     like-for-like caller.
//
// Each reports msgs/s. Run: go test -run '^$' -bench Publish16 ./transport/kafka/
func BenchmarkPublish16(b *testing.B) {
	cluster := kafkatest.New(b)
	b.Run("sdk", func(b *testing.B) { benchSDKPublish(b, cluster) })
	b.Run("watermill-kafka", func(b *testing.B) { benchWatermillPublish(b, cluster, false) })
	b.Run("watermill-kafka-acks-all", func(b *testing.B) { benchWatermillPublish(b, cluster, true) })
	b.Run("sarama-async", func(b *testing.B) { benchSaramaAsync(b, cluster) })
}

// benchTransport opens a transport on cluster, closed when the benchmark ends, and a
// new topic with the given partitions (0: the default).
func benchTransport(b *testing.B, cluster *kafkatest.Cluster, partitions int32) (*kafka.Transport, string) {
	tr, err := kafka.New(context.Background(), kafka.Config{Brokers: cluster.Addrs, Partitions: partitions})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tr.Close() })
	topic := "bench." + uuid.NewString()[:8]
	if err := tr.Provision(context.Background(), topic); err != nil {
		b.Fatal(err)
	}
	return tr, topic
}

// runPublishers calls publish, which sends perCall messages, from benchPublishers
// goroutines until b.N messages are sent, and reports msgs/s.
func runPublishers(b *testing.B, perCall int, publish func() error) {
	calls := max(1, b.N/perCall)
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	b.ResetTimer()
	start := time.Now()
	for range benchPublishers {
		wg.Go(func() {
			for next.Add(1) <= int64(calls) {
				if err := publish(); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	b.ReportMetric(float64(calls*perCall)/elapsed.Seconds(), "msgs/s")
}

func benchSDKPublish(b *testing.B, cluster *kafkatest.Cluster) {
	tr, topicName := benchTransport(b, cluster, 0)
	c, err := pubsub.New(tr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	topic := pubsub.NewTopic[[]byte](topicName, pubsub.WithCodec(codec.Raw))
	ctx := context.Background()
	runPublishers(b, 1, func() error { return pubsub.Publish(ctx, c, topic, benchPayload) })
}

func benchWatermillPublish(b *testing.B, cluster *kafkatest.Cluster, acksAll bool) {
	_, topic := benchTransport(b, cluster, 0)
	sc := wkafka.DefaultSaramaSyncPublisherConfig()
	if acksAll {
		sc.Producer.RequiredAcks = sarama.WaitForAll
	}
	pub, err := wkafka.NewPublisher(wkafka.PublisherConfig{Brokers: cluster.Addrs, Marshaler: wkafka.DefaultMarshaler{}, OverwriteSaramaConfig: sc}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	runPublishers(b, 1, func() error {
		return pub.Publish(topic, message.NewMessage(uuid.NewString(), benchPayload))
	})
}

func benchSaramaAsync(b *testing.B, cluster *kafkatest.Cluster) {
	tr, topic := benchTransport(b, cluster, 0)
	sc := tr.SaramaConfig()
	p, err := sarama.NewAsyncProducer(cluster.Addrs, sc)
	if err != nil {
		b.Fatal(err)
	}
	var acked atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for range p.Successes() {
			acked.Add(1)
		}
	})
	wg.Go(func() {
		for e := range p.Errors() {
			b.Error(e.Err)
		}
	})
	var next atomic.Int64
	var senders sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range benchPublishers {
		senders.Go(func() {
			for next.Add(1) <= int64(b.N) {
				p.Input() <- &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(benchPayload)}
			}
		})
	}
	senders.Wait()
	p.AsyncClose() // flushes what is in flight; the loops above end when it is done
	wg.Wait()
	elapsed := time.Since(start)
	if acked.Load() != int64(b.N) {
		b.Fatalf("acknowledged %d of %d", acked.Load(), b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}

// benchBatch is the number of messages per Publish call in BenchmarkPublishBatch16.
const benchBatch = 64

// BenchmarkPublishBatch16 is BenchmarkPublish16 with 64 messages per Publish call, the
// Watermill publisher's variadic form: the transport sends a call's messages together,
// watermill-kafka's publisher one after the other. It reports msgs/s.
func BenchmarkPublishBatch16(b *testing.B) {
	cluster := kafkatest.New(b)
	batch := func() []*message.Message {
		msgs := make([]*message.Message, benchBatch)
		for i := range msgs {
			msgs[i] = message.NewMessage(uuid.NewString(), benchPayload)
		}
		return msgs
	}
	b.Run("sdk-transport", func(b *testing.B) {
		tr, topic := benchTransport(b, cluster, 0)
		runPublishers(b, benchBatch, func() error { return tr.Publish(topic, batch()...) })
	})
	b.Run("watermill-kafka", func(b *testing.B) {
		_, topic := benchTransport(b, cluster, 0)
		pub, err := wkafka.NewPublisher(wkafka.PublisherConfig{Brokers: cluster.Addrs, Marshaler: wkafka.DefaultMarshaler{}}, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer pub.Close()
		runPublishers(b, benchBatch, func() error { return pub.Publish(topic, batch()...) })
	})
}

// BenchmarkProduceRoundTrip sends produce requests of 1 and of 16 records, one at a
// time, with sarama's protocol layer straight to the partition leader: the round trip
// of the client and cluster alone, which bounds what 16 publishers that each wait for
// their acknowledgement can reach (16 records per round trip at best). It reports
// µs/request and msgs/s.
func BenchmarkProduceRoundTrip(b *testing.B) {
	cluster := kafkatest.New(b)
	tr, topic := benchTransport(b, cluster, 1)
	client, err := sarama.NewClient(cluster.Addrs, tr.SaramaConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	leader, err := client.Leader(topic, 0)
	if err != nil {
		b.Fatal(err)
	}
	for _, records := range []int{1, 16} {
		b.Run(fmt.Sprintf("records=%d", records), func(b *testing.B) {
			start := time.Now()
			for range b.N {
				req := &sarama.ProduceRequest{RequiredAcks: sarama.WaitForAll, Timeout: 10_000, Version: 9}
				rb := &sarama.RecordBatch{Version: 2, FirstTimestamp: time.Now(), ProducerID: -1, ProducerEpoch: -1,
					FirstSequence: -1, LastOffsetDelta: int32(records - 1)}
				for i := range records {
					rb.Records = append(rb.Records, &sarama.Record{OffsetDelta: int64(i), Value: benchPayload})
				}
				req.AddBatch(topic, 0, rb)
				resp, err := leader.Produce(req)
				if err != nil {
					b.Fatal(err)
				}
				if blk := resp.GetBlock(topic, 0); blk == nil || blk.Err != sarama.ErrNoError {
					b.Fatalf("produce: %+v", blk)
				}
			}
			elapsed := time.Since(start)
			b.ReportMetric(float64(elapsed.Microseconds())/float64(b.N), "µs/request")
			b.ReportMetric(float64(b.N*records)/elapsed.Seconds(), "msgs/s")
		})
	}
}
