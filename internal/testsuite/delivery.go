package testsuite

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/pubsubtest"
)

// scenarioDelay is the BackoffDelay of the 1..10 scenario: retries wait 2·d, 4·d, 8·d.
const scenarioDelay = 25 * time.Millisecond

// attempts records when each value was attempted, and in which order.
type attempts struct {
	mu    sync.Mutex
	at    map[int][]time.Time
	order []string // "v#attempt", in handling order
}

func (a *attempts) record(v, attempt int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.at == nil {
		a.at = map[int][]time.Time{}
	}
	a.at[v] = append(a.at[v], time.Now())
	a.order = append(a.order, fmt.Sprintf("%d#%d", v, attempt))
}

func (a *attempts) snapshot() (map[int][]time.Time, []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	at := map[int][]time.Time{}
	for v, ts := range a.at {
		at[v] = slices.Clone(ts)
	}
	return at, slices.Clone(a.order)
}

// testDeliveryScenario runs the Knative scenario: values 1..10 published with one key,
// the handler fails those divisible by 3, Retry 3, exponential backoff. 1,2,4,5,7,8,10
// are handled once; 3, 6 and 9 are attempted four times, each retry no earlier than
// its backoff and not much later, then dead-lettered with the attempts and the
// reason. A second group that succeeds sees every value once. Ordered: the values
// behind a failing one wait for it. Unordered: 10 is handled before 9's last attempt.
func testDeliveryScenario(ordering pubsub.Ordering) func(t *testing.T, h Harness) {
	return func(t *testing.T, h Harness) {
		c, tr := newClientOn(t, h)
		name := uniqueName(t, "values")
		topic := pubsub.NewTopic[int](name, pubsub.WithKey(func(int) string { return "one-key" }))
		delivery := pubsub.Delivery{Retry: 3, BackoffDelay: scenarioDelay, Ordering: ordering}

		var failing attempts
		if err := pubsub.Subscribe(c, topic, "flaky", func(_ context.Context, m *pubsub.Message[int]) error {
			failing.record(m.Payload, m.Attempt)
			if m.Payload%3 == 0 {
				return fmt.Errorf("value %d is divisible by 3", m.Payload)
			}
			return nil
		}, pubsub.WithDelivery(delivery)); err != nil {
			t.Fatal(err)
		}
		var healthy attempts
		if err := pubsub.Subscribe(c, topic, "healthy", func(_ context.Context, m *pubsub.Message[int]) error {
			healthy.record(m.Payload, m.Attempt)
			return nil
		}, pubsub.WithDelivery(delivery)); err != nil {
			t.Fatal(err)
		}
		dead := subscribe(t, tr, pubsub.DeadLetterTopicName(name, "flaky"), "inspect")
		pubsubtest.Run(t, c)

		for v := 1; v <= 10; v++ {
			if err := pubsub.Publish(context.Background(), c, topic, v); err != nil {
				t.Fatal(err)
			}
		}

		letters := map[int]*message.Message{}
		for _, d := range receive(t, dead, 3, h.Timeout) {
			v, _ := strconv.Atoi(string(d.Payload))
			letters[v] = d
		}
		at, order := failing.waitAll(t, 10, h.Timeout)
		for v := 1; v <= 10; v++ {
			want := 1
			if v%3 == 0 {
				want = 4
			}
			if len(at[v]) != want {
				t.Errorf("value %d attempted %d times, want %d (order %v)", v, len(at[v]), want, order)
			}
		}
		for _, v := range []int{3, 6, 9} {
			checkSpacing(t, v, at[v], delivery)
			d := letters[v]
			if d == nil {
				t.Errorf("value %d not dead-lettered; dead letters: %v", v, slices.Collect(maps.Keys(letters)))
				continue
			}
			if got := d.Metadata.Get(metadata.DeadLetterAttempts); got != "4" {
				t.Errorf("dead letter of %d says %s attempts, want 4", v, got)
			}
			if reason := d.Metadata.Get(metadata.DeadLetterReason); reason != fmt.Sprintf("value %d is divisible by 3", v) {
				t.Errorf("dead letter of %d gives the reason %q", v, reason)
			}
			if d.Metadata.Get(metadata.DeadLetterTopic) != name || d.Metadata.Get(metadata.DeadLetterGroup) != "flaky" {
				t.Errorf("dead letter of %d names topic %q group %q", v, d.Metadata.Get(metadata.DeadLetterTopic), d.Metadata.Get(metadata.DeadLetterGroup))
			}
		}

		switch ordering {
		case pubsub.Ordered:
			// Each value's first attempt comes after every attempt of the values
			// before it: a failing value holds back the rest of its partition.
			for v := 2; v <= 10; v++ {
				prev := at[v-1]
				if len(prev) > 0 && len(at[v]) > 0 && at[v][0].Before(prev[len(prev)-1]) {
					t.Errorf("ordered: %d was handled before %d's last attempt (order %v)", v, v-1, order)
				}
			}
		case pubsub.Unordered:
			if len(at[10]) > 0 && len(at[9]) == 4 && !at[10][0].Before(at[9][3]) {
				t.Errorf("unordered: 10 waited for 9's last attempt (order %v)", order)
			}
		}

		hat, horder := healthy.waitAll(t, 10, h.Timeout)
		for v := 1; v <= 10; v++ {
			if len(hat[v]) != 1 {
				t.Errorf("healthy group handled %d %d times, want once (order %v)", v, len(hat[v]), horder)
			}
		}
	}
}

// checkSpacing asserts that retry n of v came no earlier than its backoff and, the
// load being light, not more than 10% + 100 ms later.
func checkSpacing(t *testing.T, v int, at []time.Time, d pubsub.Delivery) {
	t.Helper()
	for n := 1; n < len(at); n++ {
		gap, want := at[n].Sub(at[n-1]), d.Backoff(n)
		if gap < want || gap > want+want/10+100*time.Millisecond {
			t.Errorf("value %d: retry %d came %v after the attempt before it, want %v (at most 10%% + 100ms later)", v, n, gap, want)
		}
	}
}

// waitAll waits until n distinct values were handled.
func (a *attempts) waitAll(t *testing.T, n int, timeout time.Duration) (map[int][]time.Time, []string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		at, order := a.snapshot()
		if len(at) >= n {
			return at, order
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d values handled within %v (order %v)", len(at), n, timeout, order)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
