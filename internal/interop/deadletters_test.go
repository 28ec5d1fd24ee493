package interop

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	pubsub "github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/metadata"
)

// TestDeadLettersReadByLibrdkafka fails some messages for good (a permanent error)
// and one after its retries, and reads the dead-letter topic with librdkafka: each
// dead letter carries its payload, key, the reason, the original topic and group, the
// attempts made and whether the failure was permanent, as headers.
func TestDeadLettersReadByLibrdkafka(t *testing.T) {
	t.Parallel()
	requirePython(t)
	cluster := kafkatest.New(t)
	topic := kafkatest.Topic("payments")
	const group = "ledger"
	client := openClient(t, cluster, "partitions=3")
	tp := pubsub.NewTopic[value](topic)
	var mu sync.Mutex
	handled := map[int]int{} // n → attempts
	must(t, pubsub.Subscribe(client, tp, group, func(_ context.Context, m *pubsub.Message[value]) error {
		mu.Lock()
		handled[m.Payload.N]++
		mu.Unlock()
		switch {
		case m.Payload.N%4 == 0:
			return pubsub.Permanent(fmt.Errorf("amount %d is over the limit", m.Payload.N))
		case m.Payload.N == 7:
			return errors.New("ledger unavailable")
		}
		return nil
	}, pubsub.WithDelivery(pubsub.Delivery{Retry: 2, BackoffDelay: 10 * time.Millisecond})))
	run(t, client)
	for n := 1; n <= 9; n++ {
		must(t, pubsub.Publish(context.Background(), client, tp, value{N: n}, pubsub.WithMessageKey(fmt.Sprint("p-", n))))
	}

	dlq := pubsub.DeadLetterTopicName(topic, group)
	letters := consumeAll(t, rdkafka(cluster, nil), 3, dlq)
	slices.SortFunc(letters, func(a, b consumed) int { return strings.Compare(a.key(), b.key()) })
	want := []struct {
		n                   int
		reason              string
		attempts, permanent string
	}{
		{4, "amount 4 is over the limit", "1", "true"},
		{7, "ledger unavailable", "3", "false"},
		{8, "amount 8 is over the limit", "1", "true"},
	}
	for i, w := range want {
		l := letters[i]
		if l.Key == nil || *l.Key != fmt.Sprint("p-", w.n) || l.Value == nil || *l.Value != (value{N: w.n}).json() {
			t.Errorf("dead letter %d: key %v value %v, want p-%d %s", i, l.Key, l.Value, w.n, value{N: w.n}.json())
			continue
		}
		one := func(name string) string {
			vs := l.header(name)
			if len(vs) != 1 {
				t.Errorf("n=%d: header %s has values %q, want one", w.n, name, vs)
				return ""
			}
			return vs[0]
		}
		if r := one(metadata.DeadLetterReason); !strings.Contains(r, w.reason) {
			t.Errorf("n=%d: reason %q, want it to hold %q", w.n, r, w.reason)
		}
		for name, v := range map[string]string{
			metadata.DeadLetterTopic:     topic,
			metadata.DeadLetterGroup:     group,
			metadata.DeadLetterAttempts:  w.attempts,
			metadata.DeadLetterPermanent: w.permanent,
			metadata.ContentType:         "application/json",
		} {
			if got := one(name); got != v {
				t.Errorf("n=%d: header %s = %q, want %q", w.n, name, got, v)
			}
		}
		for _, name := range []string{metadata.DeadLetterFirstFailure, metadata.DeadLetterLastFailure} {
			if _, ok := metadata.ParseTime(one(name)); !ok {
				t.Errorf("n=%d: header %s is not a time: %q", w.n, name, l.header(name))
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if handled[7] != 3 || handled[4] != 1 || handled[8] != 1 {
		t.Errorf("attempts: 4 → %d, 7 → %d, 8 → %d; want 1, 3, 1", handled[4], handled[7], handled[8])
	}
}
