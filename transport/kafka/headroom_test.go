package kafka

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/transport"
)

const testLimit = 64 << 10

// sized returns a message for topic whose record is exactly size bytes as the
// transport measures it, with md as its metadata.
func sized(t *testing.T, topic string, size int, md message.Metadata) *message.Message {
	t.Helper()
	m := message.NewMessage("id-"+strconv.Itoa(size), nil)
	m.Metadata = md
	m.Payload = make([]byte, size-recordSize(toRecord(topic, m)))
	if got := recordSize(toRecord(topic, m)); got != size {
		t.Fatalf("built a record of %d bytes, want %d", got, size)
	}
	return m
}

// TestDeadLetterHeadroom: a message of exactly MaxMessageBytes is accepted, and so is
// the same message dead-lettered with 30 KiB of dead-letter headers; one byte more
// without dead-letter marks is refused at once with ErrMessageTooLarge, as is a dead
// letter beyond the headroom. The topic is created to take them.
func TestDeadLetterHeadroom(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.New(t)
	tr, err := New(context.Background(), Config{Brokers: cluster.Addrs, MaxMessageBytes: testLimit})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ctx := context.Background()
	topic := kafkatest.Topic("big")

	atLimit := sized(t, topic, testLimit, message.Metadata{"user": "x"})
	if err := tr.Publish(topic, atLimit); err != nil {
		t.Fatalf("a message of exactly max_message_bytes: %v", err)
	}
	rcs, err := tr.admin.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := rcs.On(topic, nil); err != nil || !hasConfig(c, "max.message.bytes", strconv.Itoa(testLimit+transport.DeadLetterHeadroom)) {
		t.Errorf("the created topic's configs %v (%v): want max.message.bytes %d", c.Configs, err, testLimit+transport.DeadLetterHeadroom)
	}

	dead := atLimit.Copy()
	dead.Metadata.Set(metadata.DeadLetterReason, strings.Repeat("r", metadata.MaxReasonBytes))
	dead.Metadata.Set(metadata.DeadLetterTopic, "orders")
	dead.Metadata.Set("note", strings.Repeat("n", 30<<10-metadata.MaxReasonBytes))
	if err := tr.Publish(topic, dead); err != nil {
		t.Fatalf("the message at the limit with 30 KiB of dead-letter headers: %v", err)
	}
	var asyncErr = make(chan error, 1)
	tr.PublishAsync(ctx, topic, dead, func(err error) { asyncErr <- err })
	if err := <-asyncErr; err != nil {
		t.Fatalf("PublishAsync of the dead letter: %v", err)
	}

	over := sized(t, topic, testLimit+1, message.Metadata{"user": "x"})
	start := time.Now()
	err = tr.Publish(topic, over)
	if !errors.Is(err, transport.ErrMessageTooLarge) {
		t.Fatalf("one byte over the limit: %v, want ErrMessageTooLarge", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("refusing a message too large took %s: want at once", took)
	}
	tr.PublishAsync(ctx, topic, over, func(err error) { asyncErr <- err })
	if err := <-asyncErr; !errors.Is(err, transport.ErrMessageTooLarge) {
		t.Errorf("PublishAsync one byte over the limit: %v, want ErrMessageTooLarge", err)
	}
	tooDead := sized(t, topic, testLimit+transport.DeadLetterHeadroom, message.Metadata{metadata.DeadLetterReason: "r"})
	if err := tr.Publish(topic, tooDead); !errors.Is(err, transport.ErrMessageTooLarge) {
		t.Errorf("a dead letter beyond the headroom: %v, want ErrMessageTooLarge", err)
	}

	msgs, err := tr.ReadAll(ctx, topic)
	if err != nil || len(msgs) != 3 {
		t.Fatalf("ReadAll: %d messages, %v; want the 3 accepted", len(msgs), err)
	}
}

func hasConfig(c kadm.ResourceConfig, key, value string) bool {
	for _, kv := range c.Configs {
		if kv.Key == key && kv.Value != nil && *kv.Value == value {
			return true
		}
	}
	return false
}

// TestSmallerTopicLimitIsMessageTooLarge: a topic that exists with a smaller
// max.message.bytes keeps it (the transport changes no existing topic's
// configuration); a message it cannot take fails with ErrMessageTooLarge, and smaller
// ones keep being published.
func TestSmallerTopicLimitIsMessageTooLarge(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.New(t)
	ctx := context.Background()
	topic := kafkatest.Topic("small")
	raw, err := kgo.NewClient(kgo.SeedBrokers(cluster.Addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	small := "20000"
	if _, err := kadm.NewClient(raw).CreateTopic(ctx, 1, 3, map[string]*string{"max.message.bytes": &small, "min.insync.replicas": kadm.StringPtr("2")}, topic); err != nil {
		t.Fatal(err)
	}
	tr, err := New(ctx, Config{Brokers: cluster.Addrs, MaxMessageBytes: testLimit})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := tr.Publish(topic, sized(t, topic, 30000, nil)); !errors.Is(err, transport.ErrMessageTooLarge) {
		t.Fatalf("30000 bytes to a topic of max.message.bytes 20000: %v, want ErrMessageTooLarge", err)
	}
	if err := tr.Publish(topic, sized(t, topic, 10000, nil)); err != nil {
		t.Fatalf("10000 bytes afterwards: %v", err)
	}
}
