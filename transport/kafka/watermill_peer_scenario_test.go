package kafka_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

// peerMessages are what both directions send: an id, a payload and metadata that
// must arrive unchanged.
func peerMessages(n int) []*message.Message {
	msgs := make([]*message.Message, n)
	for i := range msgs {
		msgs[i] = message.NewMessage(watermill.NewUUID(), []byte("payload-"+strconv.Itoa(i)))
		msgs[i].Metadata.Set("trace", "t-"+strconv.Itoa(i))
		msgs[i].Metadata.Set("tenant", "acme")
	}
	return msgs
}

// checkSame fails unless got holds exactly the messages of want, each once, with
// its id, payload and metadata (extra metadata allowed).
func checkSame(t *testing.T, want, got []*message.Message) {
	t.Helper()
	byID := map[string]*message.Message{}
	for _, m := range got {
		if _, dup := byID[m.UUID]; dup {
			t.Errorf("message %s received twice", m.UUID)
		}
		byID[m.UUID] = m
	}
	for _, w := range want {
		g, ok := byID[w.UUID]
		if !ok {
			t.Errorf("message %s (%s) lost or received under another id", w.UUID, w.Payload)
			continue
		}
		if string(g.Payload) != string(w.Payload) {
			t.Errorf("message %s: payload %q, want %q", w.UUID, g.Payload, w.Payload)
		}
		for k, v := range w.Metadata {
			if g.Metadata.Get(k) != v {
				t.Errorf("message %s: metadata %s = %q, want %q", w.UUID, k, g.Metadata.Get(k), v)
			}
		}
	}
}

func saramaConfig() *sarama.Config {
	c := wkafka.DefaultSaramaSubscriberConfig()
	c.Version = sarama.V2_8_0_0
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	return c
}

// TestWatermillKafkaPublisherToOurSubscriber: records written by watermill-kafka v3's
// publisher arrive at our subscriber with watermill's message id (its
// _watermill_message_uuid header), payload and metadata: 0 lost, 0 duplicated.
func TestWatermillKafkaPublisherToOurSubscriber(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.New(t)
	topic := kafkatest.Topic("wmk-in")
	tr := newTransport(t, cluster, kafka.Config{})
	if err := tr.Provision(context.Background(), topic); err != nil {
		t.Fatal(err)
	}
	pcfg := wkafka.DefaultSaramaSyncPublisherConfig()
	pcfg.Version = sarama.V2_8_0_0
	pub, err := wkafka.NewPublisher(wkafka.PublisherConfig{Brokers: cluster.Addrs, Marshaler: wkafka.DefaultMarshaler{},
		OverwriteSaramaConfig: pcfg}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	want := peerMessages(50)
	if err := pub.Publish(topic, want...); err != nil {
		t.Fatalf("watermill-kafka Publish: %v", err)
	}
	sub := subscribe(t, tr, topic, transport.SubscribeOptions{Group: "ours"})
	checkSame(t, want, receive(t, sub, len(want), 20*time.Second))
	select {
	case m := <-sub.Messages():
		t.Errorf("one message more than published: %s %q", m.UUID, m.Payload)
		m.Ack()
	case <-time.After(300 * time.Millisecond):
	}
}

// TestOurPublisherToWatermillKafkaSubscriber: records we publish reach watermill-kafka
// v3's subscriber (in a consumer group, from the oldest offset) with our message id,
// payload and metadata: 0 lost, 0 duplicated.
func TestOurPublisherToWatermillKafkaSubscriber(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.New(t)
	topic := kafkatest.Topic("wmk-out")
	tr := newTransport(t, cluster, kafka.Config{})
	want := peerMessages(50)
	if err := tr.Publish(topic, want...); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	sub, err := wkafka.NewSubscriber(wkafka.SubscriberConfig{Brokers: cluster.Addrs, Unmarshaler: wkafka.DefaultMarshaler{},
		OverwriteSaramaConfig: saramaConfig(), ConsumerGroup: "theirs"}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch, err := sub.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var got []*message.Message
	for len(got) < len(want) {
		select {
		case m := <-ch:
			got = append(got, m)
			m.Ack()
		case <-ctx.Done():
			t.Fatalf("watermill-kafka received %d of %d messages", len(got), len(want))
		}
	}
	checkSame(t, want, got)
}
