package kafka_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

// publishKeyed publishes one message per value, keyed by the value, so they spread
// over the partitions.
func publishKeyed(t testing.TB, tr transport.Transport, topic string, values ...string) {
	t.Helper()
	for _, v := range values {
		m := message.NewMessage(v, []byte(v))
		m.Metadata.Set(metadata.Key, v)
		if err := tr.Publish(topic, m); err != nil {
			t.Fatalf("Publish(%q): %v", topic, err)
		}
	}
}

// collect acks and returns the payloads of the messages that arrive on ch until
// want have, or the timeout.
func collect(t testing.TB, ch <-chan *message.Message, want int, timeout time.Duration) []string {
	t.Helper()
	var got []string
	deadline := time.After(timeout)
	for len(got) < want {
		select {
		case m, ok := <-ch:
			if !ok {
				t.Fatalf("subscription closed after %q", got)
			}
			got = append(got, string(m.Payload))
			m.Ack()
		case <-deadline:
			t.Fatalf("got %q within %s, want %d messages", got, timeout, want)
		}
	}
	return got
}

func subscribeTail(t testing.TB, tr transport.Transport, topic string, opts transport.SubscribeOptions) <-chan *message.Message {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	sub, err := tr.Subscribe(ctx, topic, opts)
	if err != nil {
		t.Fatalf("Subscribe(%q, %+v): %v", topic, opts, err)
	}
	return sub.Messages()
}

// TestFromEndReadsOnlyNewMessages: a tail starts at every partition's end as
// Subscribe found it: what was published before is never read, everything published
// after it returned is, and a group ignores FromEnd.
func TestFromEndReadsOnlyNewMessages(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.New(t)
	tr := newTransport(t, cluster, kafka.Config{})
	topic := kafkatest.Topic("tail")
	var before, after []string
	for i := range 12 {
		before, after = append(before, fmt.Sprint("old", i)), append(after, fmt.Sprint("new", i))
	}
	publishKeyed(t, tr, topic, before...)

	tail := subscribeTail(t, tr, topic, transport.SubscribeOptions{FromEnd: true})
	publishKeyed(t, tr, topic, after...) // at once: a tail that found its ends later would miss some
	got := collect(t, tail, len(after), 20*time.Second)
	slices.Sort(got)
	want := slices.Sorted(slices.Values(after))
	if !slices.Equal(got, want) {
		t.Fatalf("the tail read %q, want %q", got, want)
	}
	select {
	case m := <-tail:
		t.Fatalf("the tail read %q beyond what was published after it began", m.Payload)
	case <-time.After(300 * time.Millisecond):
	}

	group := subscribeTail(t, tr, topic, transport.SubscribeOptions{Group: kafkatest.Topic("g"), FromEnd: true})
	if got := collect(t, group, len(before)+len(after), 20*time.Second); len(got) != 24 {
		t.Fatalf("a new group with FromEnd read %d messages, want all 24", len(got))
	}
}

// TestFromEndWaitsForAMissingTopic: with provisioning off, a tail of a topic that does
// not exist yet reads everything the topic holds once it is made.
func TestFromEndWaitsForAMissingTopic(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.New(t)
	tr := newTransport(t, cluster, kafka.Config{DisableProvisioning: true})
	topic := kafkatest.Topic("later")
	tail := subscribeTail(t, tr, topic, transport.SubscribeOptions{FromEnd: true})

	creator := newTransport(t, cluster, kafka.Config{})
	if err := creator.Provision(context.Background(), topic); err != nil {
		t.Fatal(err)
	}
	publishKeyed(t, creator, topic, "a", "b", "c")
	got := collect(t, tail, 3, 20*time.Second)
	slices.Sort(got)
	if !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("the tail of a topic made after it began read %q, want a, b, c", got)
	}
}
