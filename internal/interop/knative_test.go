package interop

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	pubsub "github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/middleware"
)

// attempt is one call of the handler, in the order the calls began.
type attempt struct {
	n, attempt int
	id         string
}

// TestKnativeScenario is the Knative broker scenario end to end on Kafka: a
// CloudEvents producer publishes 1..10; the handler fails on multiples of 3; with 3
// exponential retries, Unordered, the other values go on meanwhile (10 is handled
// before 9's last attempt); 3, 6 and 9 reach the dead-letter topic as CloudEvents with
// Knative's error extensions, which a librdkafka consumer reads: the original event
// id, the destination, the status code and the reason in base64.
func TestKnativeScenario(t *testing.T) {
	t.Parallel()
	requirePython(t)
	cluster := kafkatest.New(t)
	topic := kafkatest.Topic("knative")
	const group = "consumer"
	client := openClient(t, cluster, "partitions=3")
	tp := pubsub.NewTopic[value](topic, pubsub.WithCloudEvents("/producer"))

	var mu sync.Mutex
	var calls []attempt
	handled := newSink[value]()
	must(t, pubsub.Subscribe(client, tp, group, func(_ context.Context, m *pubsub.Message[value]) error {
		mu.Lock()
		calls = append(calls, attempt{n: m.Payload.N, attempt: m.Attempt, id: m.ID})
		mu.Unlock()
		if m.Payload.N%3 == 0 {
			return fmt.Errorf("value %d is a multiple of 3", m.Payload.N)
		}
		handled.add(m)
		return nil
	}, pubsub.WithDelivery(pubsub.Delivery{Retry: 3, BackoffPolicy: pubsub.BackoffExponential,
		BackoffDelay: 50 * time.Millisecond, Ordering: pubsub.Unordered}), pubsub.WithKnativeDeadLetters()))
	run(t, client)
	for n := 1; n <= 10; n++ {
		must(t, pubsub.Publish(context.Background(), client, tp, value{N: n}))
	}

	dlq := pubsub.DeadLetterTopicName(topic, group)
	letters := consumeAll(t, rdkafka(cluster, nil), 3, dlq)
	handled.wait(t, "the values that are no multiple of 3", atLeast[value](7))

	mu.Lock()
	defer mu.Unlock()
	ids := map[int]string{}
	attempts := map[int][]int{}
	tenAt, nineLastAt := -1, -1
	for i, c := range calls {
		attempts[c.n] = append(attempts[c.n], c.attempt)
		if c.attempt == 1 {
			ids[c.n] = c.id
		} else if ids[c.n] != c.id {
			t.Errorf("n=%d attempt %d has id %q, the first had %q", c.n, c.attempt, c.id, ids[c.n])
		}
		switch {
		case c.n == 10 && tenAt < 0:
			tenAt = i
		case c.n == 9 && c.attempt == 4:
			nineLastAt = i
		}
	}
	for n := 1; n <= 10; n++ {
		want := []int{1}
		if n%3 == 0 {
			want = []int{1, 2, 3, 4}
		}
		if !slices.Equal(attempts[n], want) {
			t.Errorf("n=%d: attempts %v, want %v", n, attempts[n], want)
		}
	}
	if tenAt < 0 || nineLastAt < 0 || tenAt > nineLastAt {
		t.Errorf("10 was handled at call %d, 9's last attempt was call %d: 10 must come first", tenAt, nineLastAt)
	}

	slices.SortFunc(letters, func(a, b consumed) int { return strings.Compare(a.value(), b.value()) })
	for i, n := range []int{3, 6, 9} {
		l := letters[i]
		if l.Value == nil || *l.Value != (value{N: n}).json() {
			t.Errorf("dead letter %d: value %v, want %s", i, l.Value, value{N: n}.json())
			continue
		}
		one := func(name string) string {
			vs := l.header(name)
			if len(vs) != 1 {
				t.Errorf("n=%d: header %s has values %q, want one", n, name, vs)
				return ""
			}
			return vs[0]
		}
		for name, want := range map[string]string{
			metadata.CloudEventsSpec:   "1.0",
			metadata.CloudEventsID:     ids[n],
			metadata.CloudEventsSource: "/producer",
			metadata.ContentType:       "application/json",
			metadata.KnativeErrorDest:  middleware.KnativeDestination(topic, group),
			metadata.KnativeErrorCode:  "500",
			metadata.DeadLetterTopic:   topic,
		} {
			if got := one(name); got != want || want == "" {
				t.Errorf("n=%d: header %s = %q, want %q", n, name, got, want)
			}
		}
		if one(metadata.CloudEventsType) == "" || one(metadata.CloudEventsTime) == "" {
			t.Errorf("n=%d: the dead letter lacks ce_type or ce_time: %v", n, l.headerNames())
		}
		data, err := base64.StdEncoding.DecodeString(one(metadata.KnativeErrorData))
		if reason := fmt.Sprintf("value %d is a multiple of 3", n); err != nil || !strings.Contains(string(data), reason) {
			t.Errorf("n=%d: %s decodes to %q (%v), want the reason %q", n, metadata.KnativeErrorData, data, err, reason)
		}
	}
}
