package engine_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.uber.org/goleak"

	"github.com/pubsubkit/pubsub/internal/engine"
	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/memory"
)

// wait bounds every wait for an event: far above the unloaded time.
const wait = 15 * time.Second

// testTransport is what the tests use of a transport.
type testTransport interface {
	transport.Transport
	transport.GroupLagger
}

// channelOnly hides the memory transport's SubscribeHandler: the engine then hands
// each message to a worker of its own over the subscription's channel.
type channelOnly struct {
	transport.Transport
	transport.GroupLagger
}

// inBothModes runs test on a transport that runs the engine's handler on its own
// workers (the memory transport, transport.HandlerSubscriber) and on one that hands
// messages over its channel to the engine's workers.
func inBothModes(t *testing.T, test func(t *testing.T, newTransport func(*testing.T) testTransport)) {
	t.Run("served", func(t *testing.T) {
		test(t, func(t *testing.T) testTransport { return newMemory(t, memory.Config{}) })
	})
	t.Run("channel", func(t *testing.T) {
		test(t, func(t *testing.T) testTransport {
			tr := newMemory(t, memory.Config{})
			return channelOnly{tr, tr}
		})
	})
}

// newMemory returns a memory transport; the caller closes it.
func newMemory(t *testing.T, cfg memory.Config) *memory.Transport {
	t.Helper()
	tr, err := memory.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// stopInBackground ends Run (stop, from run) without waiting: the drain goes on while
// the test acts; the channel gets Run's error.
func stopInBackground(stop func() error) <-chan error {
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	return stopped
}

func publish(t *testing.T, tr transport.Transport, topic string, keys ...string) {
	t.Helper()
	for i, k := range keys {
		m := message.NewMessage(fmt.Sprint(i), []byte(k))
		m.Metadata.Set(metadata.Key, k)
		if err := tr.Publish(topic, m); err != nil {
			t.Fatal(err)
		}
	}
}

// run starts e.Run and returns a function that ends it and returns its error.
func run(t *testing.T, e *engine.Engine) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	select {
	case <-e.Running():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(wait):
		t.Fatal("Run did not start")
	}
	return func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(wait):
			t.Fatal("Run did not return")
			return nil
		}
	}
}

// add adds a one-feed subscription of topic to e.
func add(t *testing.T, e *engine.Engine, topic string, opts transport.SubscribeOptions, h engine.Handler) *engine.Sub {
	t.Helper()
	sub, err := e.Add([]engine.Feed{{Topic: topic, Options: opts, Handler: h}})
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

func received(t *testing.T, ch <-chan string, n int) []string {
	t.Helper()
	var got []string
	for range n {
		select {
		case s := <-ch:
			got = append(got, s)
		case <-time.After(wait):
			t.Fatalf("got %d of %d messages: %v", len(got), n, got)
		}
	}
	return got
}

// TestRunReturnsAfterEveryGoroutine: once Run has returned, no goroutine the engine
// or its subscriptions started is left, with workers added for concurrency.
func TestRunReturnsAfterEveryGoroutine(t *testing.T) {
	inBothModes(t, testRunReturnsAfterEveryGoroutine)
}

func testRunReturnsAfterEveryGoroutine(t *testing.T, newTransport func(*testing.T) testTransport) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	tr := newTransport(t)
	defer tr.Close()
	e := engine.New(engine.Config{Transport: tr, Drain: wait})
	got := make(chan string, 100)
	for _, topic := range []string{"leak-a", "leak-b"} {
		add(t, e, topic, transport.SubscribeOptions{Group: "g", Concurrency: 4}, func(msg *message.Message) error {
			got <- string(msg.Payload)
			return nil
		})
	}
	stop := run(t, e)
	publish(t, tr, "leak-a", "1", "2", "3", "4", "5")
	publish(t, tr, "leak-b", "6", "7")
	received(t, got, 7)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	e.Close()
}

// TestDrainLetsHandlersFinish: when Run's context ends, a handler in flight finishes
// and its message is acked before Run returns; nothing new is taken meanwhile, and
// Draining is closed at once.
func TestDrainLetsHandlersFinish(t *testing.T) { inBothModes(t, testDrainLetsHandlersFinish) }

func testDrainLetsHandlersFinish(t *testing.T, newTransport func(*testing.T) testTransport) {
	tr := newTransport(t)
	defer tr.Close()
	e := engine.New(engine.Config{Transport: tr, Drain: wait})
	started, release := make(chan string, 10), make(chan struct{})
	var handled atomic.Int32
	add(t, e, "drain", transport.SubscribeOptions{Group: "g"}, func(msg *message.Message) error {
		started <- string(msg.Payload)
		<-release
		handled.Add(1)
		return nil
	})
	stop := run(t, e)
	publish(t, tr, "drain", "first", "second")
	received(t, started, 1)
	stopped := stopInBackground(stop)
	select {
	case <-e.Draining():
	case <-time.After(wait):
		t.Fatal("Draining not closed when Run's context ended")
	}
	select {
	case err := <-stopped:
		t.Fatalf("Run returned (%v) while a handler was in flight", err)
	default:
	}
	close(release)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if n := handled.Load(); n != 1 {
		t.Fatalf("%d messages handled during the drain; want the one in flight only", n)
	}
	lag, err := tr.GroupLag(context.Background(), "drain", "g")
	if err != nil {
		t.Fatal(err)
	}
	if lag[0].Committed != 1 {
		t.Fatalf("committed position %d after the drain; want 1 (the first message finished)", lag[0].Committed)
	}
}

// TestDrainTimeout: a handler still running when the drain time runs out sees the
// Handlers context end; Run waits for it and returns ErrDrainTimeout.
func TestDrainTimeout(t *testing.T) { inBothModes(t, testDrainTimeout) }

func testDrainTimeout(t *testing.T, newTransport func(*testing.T) testTransport) {
	tr := newTransport(t)
	defer tr.Close()
	e := engine.New(engine.Config{Transport: tr, Drain: 50 * time.Millisecond})
	started := make(chan string, 1)
	var returned atomic.Bool
	add(t, e, "timeout", transport.SubscribeOptions{Group: "g"}, func(msg *message.Message) error {
		started <- string(msg.Payload)
		<-e.Handlers().Done()
		returned.Store(true)
		return e.Handlers().Err()
	})
	stop := run(t, e)
	publish(t, tr, "timeout", "x")
	received(t, started, 1)
	if err := stop(); !errors.Is(err, engine.ErrDrainTimeout) {
		t.Fatalf("Run returned %v; want ErrDrainTimeout", err)
	}
	if !returned.Load() {
		t.Fatal("Run returned before the cut-short handler did")
	}
}

// TestPanicNacks: a panic that reaches the engine nacks the message, which comes
// back.
func TestPanicNacks(t *testing.T) { inBothModes(t, testPanicNacks) }

func testPanicNacks(t *testing.T, newTransport func(*testing.T) testTransport) {
	tr := newTransport(t)
	defer tr.Close()
	e := engine.New(engine.Config{Transport: tr, Drain: wait})
	got := make(chan string, 10)
	var calls atomic.Int32
	add(t, e, "panic", transport.SubscribeOptions{Group: "g"}, func(msg *message.Message) error {
		if calls.Add(1) == 1 {
			panic("first time")
		}
		got <- string(msg.Payload)
		return nil
	})
	stop := run(t, e)
	defer stop()
	publish(t, tr, "panic", "again")
	if m := received(t, got, 1); m[0] != "again" {
		t.Fatalf("got %v", m)
	}
}

// TestConcurrencyBounded: a feed's handlers run Concurrency at once on one partition,
// and never more. The handlers wait until three are in flight (or ten seconds), so
// reaching three does not depend on how the goroutines are scheduled.
func TestConcurrencyBounded(t *testing.T) { inBothModes(t, testConcurrencyBounded) }

func testConcurrencyBounded(t *testing.T, newTransport func(*testing.T) testTransport) {
	tr := newTransport(t)
	defer tr.Close()
	e := engine.New(engine.Config{Transport: tr, Drain: wait})
	var mu sync.Mutex
	now, peak := 0, 0
	full, giveUp := make(chan struct{}), make(chan struct{})
	var fullOnce sync.Once
	defer time.AfterFunc(10*time.Second, func() { close(giveUp) }).Stop()
	got := make(chan string, 100)
	add(t, e, "bounded", transport.SubscribeOptions{Group: "g", Concurrency: 3}, func(msg *message.Message) error {
		mu.Lock()
		now++
		peak = max(peak, now)
		if now == 3 {
			fullOnce.Do(func() { close(full) })
		}
		mu.Unlock()
		select {
		case <-full:
		case <-giveUp:
		}
		mu.Lock()
		now--
		mu.Unlock()
		got <- string(msg.Payload)
		return nil
	})
	stop := run(t, e)
	defer stop()
	keys := make([]string, 30)
	for i := range keys {
		keys[i] = fmt.Sprint("k", i)
	}
	publish(t, tr, "bounded", keys...)
	received(t, got, len(keys))
	mu.Lock()
	defer mu.Unlock()
	if peak != 3 {
		t.Fatalf("peak %d handlers at once; want 3 (Concurrency 3)", peak)
	}
}

// TestPauseHoldsNewMessages: a paused subscription takes nothing new, also on a feed
// started after the pause, until Resume; Health says it is paused.
func TestPauseHoldsNewMessages(t *testing.T) { inBothModes(t, testPauseHoldsNewMessages) }

func testPauseHoldsNewMessages(t *testing.T, newTransport func(*testing.T) testTransport) {
	tr := newTransport(t)
	defer tr.Close()
	e := engine.New(engine.Config{Transport: tr, Drain: wait})
	got := make(chan string, 10)
	sub := add(t, e, "pause", transport.SubscribeOptions{Group: "g"}, func(msg *message.Message) error {
		got <- string(msg.Payload)
		return nil
	})
	sub.Pause()
	stop := run(t, e)
	defer stop()
	publish(t, tr, "pause", "held")
	if h := sub.Health(time.Minute); !h.Paused || !h.Consuming || h.Stalled {
		t.Fatalf("health while paused: %+v", h)
	}
	select {
	case m := <-got:
		t.Fatalf("%q handled while paused", m)
	case <-time.After(50 * time.Millisecond):
	}
	sub.Resume()
	received(t, got, 1)
}

// TestAddWhileRunning: a subscription added while Run runs starts at once; one added
// once the drain began is refused with ErrClosed.
func TestAddWhileRunning(t *testing.T) { inBothModes(t, testAddWhileRunning) }

func testAddWhileRunning(t *testing.T, newTransport func(*testing.T) testTransport) {
	tr := newTransport(t)
	defer tr.Close()
	e := engine.New(engine.Config{Transport: tr, Drain: wait})
	stop := run(t, e)
	got := make(chan string, 1)
	if _, err := e.Add([]engine.Feed{{Topic: "late", Options: transport.SubscribeOptions{Group: "g"},
		Handler: func(msg *message.Message) error {
			got <- string(msg.Payload)
			return nil
		}}}); err != nil {
		t.Fatal(err)
	}
	publish(t, tr, "late", "hi")
	received(t, got, 1)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	_, err := e.Add([]engine.Feed{{Topic: "later", Handler: func(*message.Message) error { return nil }}})
	if !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Add after the drain: %v; want ErrClosed", err)
	}
}
