package testsuite

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/pubsubtest"
	"github.com/pubsubkit/pubsub/transport"
)

// scenarioDelay is the BackoffDelay of the 1..10 scenario: retries wait 2·d, 4·d, 8·d,
// so 9's last attempt comes at least 14·d after its first, time enough on a loaded
// machine for 10 to be handled first when retries are unordered.
const scenarioDelay = 50 * time.Millisecond

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

// checkSpacing asserts that retry n of v came no earlier than its backoff (exact: the
// attempt before it started before it failed, and the wait starts at the failure) and
// no later than the backoff plus max(1 s, the backoff): generous enough for a loaded
// machine, tight enough to catch a retry that waits a step too long or not at all.
func checkSpacing(t *testing.T, v int, at []time.Time, d pubsub.Delivery) {
	t.Helper()
	for n := 1; n < len(at); n++ {
		gap, want := at[n].Sub(at[n-1]), d.Backoff(n)
		if late := want + max(time.Second, want); gap < want || gap > late {
			t.Errorf("value %d: retry %d came %v after the attempt before it, want %v to %v", v, n, gap, want, late)
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

// testReplayToFailingGroup: a failed message is listed as a dead letter of its group,
// replayed to that group only after a fix (attempt reset, correlation id kept), listed
// no more, and dead-lettered again if it fails again. Another group never sees it twice.
func testReplayToFailingGroup(t *testing.T, h Harness) {
	c, tr := newClientOn(t, h)
	if _, ok := tr.(transport.Reader); !ok {
		t.Skip("the transport does not implement transport.Reader, which listing dead letters needs")
	}
	name := uniqueName(t, "invoices")
	topic := pubsub.NewTopic[int](name)
	var broken atomic.Bool
	broken.Store(true)
	var flaky, steady attempts
	seen := make(chan *pubsub.Message[int], 20)
	if err := pubsub.Subscribe(c, topic, "flaky", func(_ context.Context, m *pubsub.Message[int]) error {
		flaky.record(m.Payload, m.Attempt)
		// decided before the test hears of m: once it has, it may break or mend the
		// handler for the next replay
		fail := m.Payload%2 == 1 && broken.Load()
		seen <- m
		if fail {
			return fmt.Errorf("cannot invoice %d", m.Payload)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := pubsub.Subscribe(c, topic, "steady", func(_ context.Context, m *pubsub.Message[int]) error {
		steady.record(m.Payload, m.Attempt)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	pubsubtest.Run(t, c)
	ctx := context.Background()
	for v := 1; v <= 4; v++ {
		if err := pubsub.Publish(ctx, c, topic, v, pubsub.WithCorrelationID(fmt.Sprintf("conv-%d", v))); err != nil {
			t.Fatal(err)
		}
	}
	letters := waitDeadLetters(t, c, name, "flaky", 2, h.Timeout)
	byValue := map[string]pubsub.DeadLetter{}
	for _, l := range letters {
		byValue[string(l.Payload)] = l
		if l.Attempts != 1 || l.Reason != "cannot invoice "+string(l.Payload) || l.Group != "flaky" || l.Topic != name {
			t.Errorf("dead letter %+v", l)
		}
		if l.CorrelationID != "conv-"+string(l.Payload) {
			t.Errorf("dead letter of %s has correlation id %q", l.Payload, l.CorrelationID)
		}
	}
	if _, ok := byValue["1"]; !ok {
		t.Fatalf("dead letters %v lack value 1", letters)
	}

	// Fix, then replay the oldest one only.
	broken.Store(false)
	drain(seen)
	n, err := c.Replay(ctx, name, "flaky", pubsub.ReplayIDs(byValue["1"].ID))
	if err != nil || n != 1 {
		t.Fatalf("Replay by id: %d, %v", n, err)
	}
	m := waitValue(t, seen, 1, h.Timeout)
	if m.Attempt != 1 || m.CorrelationID != "conv-1" || m.ID != byValue["1"].ID {
		t.Errorf("replayed message: attempt %d, correlation %q, id %q (want %q)", m.Attempt, m.CorrelationID, m.ID, byValue["1"].ID)
	}
	if rest := waitDeadLetters(t, c, name, "flaky", 1, h.Timeout); rest[0].ID != byValue["3"].ID {
		t.Fatalf("after replaying 1, pending dead letters are %v, want only 3's", rest)
	}

	// Broken again: the replay of 3 fails and is dead-lettered again.
	broken.Store(true)
	drain(seen)
	if n, err := c.Replay(ctx, name, "flaky", pubsub.ReplayFirst(5)); err != nil || n != 1 {
		t.Fatalf("ReplayFirst: %d, %v", n, err)
	}
	waitValue(t, seen, 3, h.Timeout)
	again := waitDeadLetters(t, c, name, "flaky", 1, h.Timeout)
	if again[0].ID != byValue["3"].ID || again[0].CorrelationID != "conv-3" {
		t.Fatalf("after a failed replay, dead letters are %v, want 3's again", again)
	}
	if _, err := c.Replay(ctx, name, "flaky", pubsub.ReplayIDs("no-such-id")); err == nil {
		t.Error("Replay of an unknown id succeeded")
	}

	steady.waitAll(t, 4, h.Timeout)
	time.Sleep(100 * time.Millisecond) // a replay leaking to this group would show by now
	at, order := steady.snapshot()
	for v := 1; v <= 4; v++ {
		if len(at[v]) != 1 {
			t.Errorf("steady group handled %d %d times, want once (order %v)", v, len(at[v]), order)
		}
	}
}

// waitDeadLetters polls until the subscription has exactly n pending dead letters.
func waitDeadLetters(t *testing.T, c *pubsub.Client, topic, group string, n int, timeout time.Duration) []pubsub.DeadLetter {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		letters, err := c.DeadLetters(context.Background(), topic, group)
		if err != nil {
			t.Fatalf("DeadLetters: %v", err)
		}
		if len(letters) == n {
			return letters
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d pending dead letters of %q in %q, want %d: %+v", len(letters), topic, group, n, letters)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitValue returns the next message with payload v from seen.
func waitValue(t *testing.T, seen <-chan *pubsub.Message[int], v int, timeout time.Duration) *pubsub.Message[int] {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m := <-seen:
			if m.Payload == v {
				return m
			}
		case <-deadline:
			t.Fatalf("value %d not handled again within %v", v, timeout)
		}
	}
}

// drain empties ch of what it holds now.
func drain[T any](ch <-chan T) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// testShutdownDuringBackoff: a message fails and waits 10 s for its first retry when
// its consumer is stopped. Stopping does not wait out the backoff, the message is not
// dead-lettered, and the consumer that starts next gets it again. On a transport that
// is not Persistent the two clients share one transport, as the process would.
func testShutdownDuringBackoff(t *testing.T, h Harness) {
	first := h.New(t)
	t.Cleanup(func() { first.Close() })
	persistent := first.Capabilities().Persistent
	second := first
	if persistent {
		second = newTransport(t, h)
	}
	name := uniqueName(t, "payments")
	topic := pubsub.NewTopic[int](name)
	delivery := pubsub.Delivery{Retry: 3, BackoffDelay: 5 * time.Second}
	dead := subscribe(t, second, pubsub.DeadLetterTopicName(name, "ledger"), "inspect")

	c1, err := pubsub.New(KeepOpen(first), clientOptions(first)...)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	failed := make(chan int, 10)
	if err := pubsub.Subscribe(c1, topic, "ledger", func(_ context.Context, m *pubsub.Message[int]) error {
		failed <- m.Attempt
		return errors.New("ledger unavailable")
	}, pubsub.WithDelivery(delivery)); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c1.Run(ctx) }()
	<-c1.Running()
	if err := pubsub.Publish(context.Background(), c1, topic, 42); err != nil {
		t.Fatal(err)
	}
	select {
	case <-failed:
	case <-time.After(h.Timeout):
		t.Fatal("the message was not handled")
	}
	time.Sleep(200 * time.Millisecond) // well inside the 10 s wait for retry 1
	began := time.Now()
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("stopping took %v: the shutdown waited out the backoff", d)
	}
	if err := c1.Close(); err != nil {
		t.Fatal(err)
	}

	c2, err := pubsub.New(KeepOpen(second), clientOptions(second)...)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	handled := make(chan *pubsub.Message[int], 10)
	if err := pubsub.Subscribe(c2, topic, "ledger", func(_ context.Context, m *pubsub.Message[int]) error {
		handled <- m
		return nil
	}, pubsub.WithDelivery(delivery)); err != nil {
		t.Fatal(err)
	}
	pubsubtest.Run(t, c2)
	select {
	case m := <-handled:
		if m.Payload != 42 {
			t.Fatalf("after the restart got %d", m.Payload)
		}
	case <-time.After(h.Timeout):
		t.Fatal("the message waiting for its retry was lost in the shutdown")
	}
	select {
	case d := <-dead:
		t.Fatalf("the message was dead-lettered by the shutdown: %v", d.Metadata)
	case <-time.After(200 * time.Millisecond):
	}
}
