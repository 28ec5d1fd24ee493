package lane_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/internal/lane"
)

// inBothModes runs test with lanes that send messages on their channel (Out) and
// with lanes that run a handler (Handle); newLane tells them apart by the subtest's
// name.
func inBothModes(t *testing.T, test func(t *testing.T)) {
	t.Run("channel", test)
	t.Run("handle", test)
}

// errNacked is what the handle mode's handler returns for a nacked message.
var errNacked = errors.New("nacked")

// newLane starts a lane. Its messages come on the returned channel, to be acked or
// nacked there, in both modes: with Handle (a subtest named handle), the handler sends
// each message on the channel and returns what the test makes of it, so every test
// checks the lane's rules for both kinds of worker.
func newLane(t *testing.T, cfg lane.Config) (*lane.Lane, chan *message.Message) {
	t.Helper()
	out := make(chan *message.Message)
	if strings.HasSuffix(t.Name(), "/handle") {
		ended := t.Context().Done()
		cfg.Handle = func(m *message.Message) error {
			select {
			case out <- m:
			case <-m.Context().Done():
				return m.Context().Err()
			case <-ended:
				return context.Canceled
			}
			select {
			case <-m.Acked():
				return nil
			case <-m.Nacked():
				return errNacked
			case <-ended:
				return context.Canceled
			}
		}
	} else {
		cfg.Out = out
	}
	if cfg.Context == nil {
		cfg.Context = context.Background()
	}
	cfg.Build = func(r *lane.Record) *message.Message {
		m := message.NewMessage(fmt.Sprint(r.Offset), nil)
		m.Metadata.Set("key", r.Key)
		return m
	}
	l := lane.New(cfg)
	t.Cleanup(func() { l.Stop(0) })
	return l, out
}

func records(from, n int, key func(i int) string) []lane.Record {
	recs := make([]lane.Record, n)
	for i := range n {
		k := key(from + i)
		recs[i] = lane.Record{Offset: int64(from + i), Key: k, Keyed: k != ""}
	}
	return recs
}

func offsetOf(m *message.Message) int64 {
	p, _ := transport.PositionFrom(m.Context())
	return p.Offset
}

// TestConcurrencyAndKeyOrder: with Concurrency 8 and ordering by key, at most 8
// messages are in flight, never two of one key, each key in offset order, and every
// message is delivered once.
func TestConcurrencyAndKeyOrder(t *testing.T) { inBothModes(t, testConcurrencyAndKeyOrder) }

func testConcurrencyAndKeyOrder(t *testing.T) {
	const total, keys, conc = 2000, 20, 8
	l, out := newLane(t, lane.Config{Concurrency: conc, Buffer: 256})
	go func() {
		for i := 0; i < total; i += 100 {
			l.Push(records(i, 100, func(i int) string { return fmt.Sprint("k", i%keys) })...)
		}
	}()
	var inFlight, peak atomic.Int64
	var mu sync.Mutex
	busy := map[string]bool{}
	last := map[string]int64{}
	var wg sync.WaitGroup
	for range total {
		m := <-out
		mu.Lock()
		k := m.Metadata.Get("key")
		if busy[k] {
			t.Fatalf("two messages of key %s in flight", k)
		}
		if off, seen := last[k]; seen && offsetOf(m) <= off {
			t.Fatalf("key %s: offset %d after %d", k, offsetOf(m), off)
		}
		busy[k], last[k] = true, offsetOf(m)
		mu.Unlock()
		n := inFlight.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
			mu.Lock()
			busy[k] = false
			mu.Unlock()
			inFlight.Add(-1)
			m.Ack()
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > conc {
		t.Fatalf("peak %d messages in flight, want at most %d", p, conc)
	}
	if next, _ := waitWatermark(l, total); next != total {
		t.Fatalf("watermark %d after every message was acked, want %d", next, total)
	}
}

func waitWatermark(l *lane.Lane, want int64) (int64, bool) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		next, ok := l.Watermark()
		if next == want || time.Now().After(deadline) {
			return next, ok
		}
		time.Sleep(time.Millisecond)
	}
}

// TestConcurrencyFillsEverySlot: with Concurrency 4 and distinct keys, four messages
// are handed out without any ack, a fifth only once one of them is acked.
func TestConcurrencyFillsEverySlot(t *testing.T) { inBothModes(t, testConcurrencyFillsEverySlot) }

func testConcurrencyFillsEverySlot(t *testing.T) {
	l, out := newLane(t, lane.Config{Concurrency: 4, Buffer: 64})
	l.Push(records(0, 10, func(i int) string { return fmt.Sprint("k", i) })...)
	held := make([]*message.Message, 0, 4)
	for range 4 {
		select {
		case m := <-out:
			held = append(held, m)
		case <-time.After(10 * time.Second):
			t.Fatalf("%d messages handed out with none acked, want 4", len(held))
		}
	}
	select {
	case m := <-out:
		t.Fatalf("a fifth message (%d) while four are in flight", offsetOf(m))
	case <-time.After(50 * time.Millisecond):
	}
	held[0].Ack()
	select {
	case m := <-out:
		m.Ack()
	case <-time.After(10 * time.Second):
		t.Fatal("no fifth message after one of four was acked")
	}
	for _, m := range held[1:] {
		m.Ack()
	}
}

// TestHotKeyDoesNotBlockOthers: one key whose handler is slow holds one slot; the
// other keys behind it flow. The workers hand messages out in no set order, so the
// test takes the 21 deliverable messages in whatever order they come.
func TestHotKeyDoesNotBlockOthers(t *testing.T) { inBothModes(t, testHotKeyDoesNotBlockOthers) }

func testHotKeyDoesNotBlockOthers(t *testing.T) {
	l, out := newLane(t, lane.Config{Concurrency: 4, Buffer: 64})
	l.Push(records(0, 40, func(i int) string {
		if i%2 == 0 {
			return "hot"
		}
		return fmt.Sprint("cold", i)
	})...)
	var hot *message.Message
	cold := 0
	for hot == nil || cold < 20 { // offset 0 (hot, held) and every cold message
		var m *message.Message
		select {
		case m = <-out:
		case <-time.After(10 * time.Second):
			t.Fatalf("held hot message: %v, cold messages: %d of 20", hot != nil, cold)
		}
		switch {
		case m.Metadata.Get("key") != "hot":
			cold++
			m.Ack()
		case hot == nil && offsetOf(m) == 0:
			hot = m
		default:
			t.Fatalf("hot message %d while the first hot one is not acked", offsetOf(m))
		}
	}
	if next, _ := l.Watermark(); next != 0 {
		t.Fatalf("watermark %d while offset 0 is in flight", next)
	}
	hot.Ack()
	select {
	case m := <-out:
		if offsetOf(m) != 2 {
			t.Fatalf("after the hot message, got %d, want the next hot one, 2", offsetOf(m))
		}
		m.Ack()
	case <-time.After(10 * time.Second):
		t.Fatal("the next hot message did not come after the first was acked")
	}
}

// TestNackRedeliversBeforeItsKey: a nacked message comes back after the delay, before
// the later messages of its key, while other keys go on; with Concurrency 1 the
// whole partition waits.
func TestNackRedeliversBeforeItsKey(t *testing.T) { inBothModes(t, testNackRedeliversBeforeItsKey) }

func testNackRedeliversBeforeItsKey(t *testing.T) {
	l, out := newLane(t, lane.Config{Concurrency: 2, NackDelay: 50 * time.Millisecond})
	l.Push(lane.Record{Offset: 0, Key: "a", Keyed: true}, lane.Record{Offset: 1, Key: "a", Keyed: true},
		lane.Record{Offset: 2, Key: "b", Keyed: true})
	// 0 (key a) and 2 (key b) are handed out, in no set order; 1 waits behind 0.
	first, b := <-out, <-out
	if offsetOf(first) == 2 {
		first, b = b, first
	}
	if offsetOf(first) != 0 || offsetOf(b) != 2 {
		t.Fatalf("first deliveries %d and %d, want 0 and 2", offsetOf(first), offsetOf(b))
	}
	start := time.Now()
	first.Nack()
	b.Ack()
	again := <-out
	if offsetOf(again) != 0 || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("got %d after %v, want 0 again after the 50ms nack delay", offsetOf(again), time.Since(start))
	}
	again.Ack()
	if m := <-out; offsetOf(m) != 1 {
		t.Fatalf("got %d, want 1", offsetOf(m))
	} else {
		m.Ack()
	}

	one, out1 := newLane(t, lane.Config{Concurrency: 1, NackDelay: 20 * time.Millisecond})
	one.Push(records(0, 2, func(int) string { return "" })...)
	(<-out1).Nack()
	if m := <-out1; offsetOf(m) != 0 {
		t.Fatalf("Concurrency 1: after a nack got %d, want 0 again", offsetOf(m))
	}
}

// TestStopLetsInFlightFinish: Stop ends the messages' contexts and redelivery waits at
// once, takes nothing new, and waits for the messages in flight up to the drain; an
// ack given in that time counts in the final watermark, and Stop returns on that ack,
// not at the end of the drain.
func TestStopLetsInFlightFinish(t *testing.T) { inBothModes(t, testStopLetsInFlightFinish) }

func testStopLetsInFlightFinish(t *testing.T) {
	l, out := newLane(t, lane.Config{Concurrency: 2, NackDelay: time.Hour})
	l.Push(records(0, 10, func(int) string { return "" })...)
	a, b := <-out, <-out // offsets 0 and 1, in no set order
	if offsetOf(a) == 1 {
		a, b = b, a
	}
	b.Nack() // offset 1 waits an hour for its redelivery: Stop must not
	stopped := make(chan int64)
	go func() {
		next, _ := l.Stop(time.Hour)
		stopped <- next
	}()
	select {
	case <-a.Context().Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the message's context did not end when its lane stopped")
	}
	a.Ack()
	select {
	case next := <-stopped:
		if next != 1 {
			t.Fatalf("Stop returned watermark %d, want 1 (offset 0 acked during the drain)", next)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Stop did not return after the last message in flight was acked (it waits for its one-hour drain)")
	}
	select {
	case m := <-out:
		t.Fatalf("delivered %d after Stop", offsetOf(m))
	default:
	}
}

// TestStopDrainRunsOut: a message never acked is given up after the drain.
func TestStopDrainRunsOut(t *testing.T) { inBothModes(t, testStopDrainRunsOut) }

func testStopDrainRunsOut(t *testing.T) {
	l, out := newLane(t, lane.Config{})
	l.Push(records(5, 1, func(int) string { return "" })...)
	<-out
	start := time.Now()
	next, ok := l.Stop(100 * time.Millisecond)
	if took := time.Since(start); !ok || next != 5 || took < 100*time.Millisecond || took > 10*time.Second {
		t.Fatalf("Stop = %d, %v after %v; want 5 (not finished) after the 100ms drain", next, ok, took)
	}
}

// TestFullAndRoom: a lane reports full at its buffer and calls OnRoom at half.
func TestFullAndRoom(t *testing.T) { inBothModes(t, testFullAndRoom) }

func testFullAndRoom(t *testing.T) {
	room := make(chan struct{}, 1)
	l, out := newLane(t, lane.Config{Buffer: 10, OnRoom: func() { room <- struct{}{} }})
	if !l.Push(records(0, 10, func(int) string { return "" })...) {
		t.Fatal("10 records in a buffer of 10: not full")
	}
	for range 5 {
		(<-out).Ack()
	}
	select {
	case <-room:
	case <-time.After(10 * time.Second):
		t.Fatal("no OnRoom after the lane drained to half")
	}
}

// TestPause: a paused lane hands out nothing; Resume goes on.
func TestPause(t *testing.T) { inBothModes(t, testPause) }

func testPause(t *testing.T) {
	l, out := newLane(t, lane.Config{})
	l.Pause()
	l.Push(records(0, 1, func(int) string { return "" })...)
	select {
	case <-out:
		t.Fatal("a paused lane delivered")
	case <-time.After(50 * time.Millisecond):
	}
	if !l.Stats().Paused {
		t.Fatal("Stats does not say paused")
	}
	l.Resume()
	select {
	case m := <-out:
		m.Ack()
	case <-time.After(10 * time.Second):
		t.Fatal("nothing after Resume")
	}
}

// TestWaitingGivesUpSlot: with Concurrency 2, two records whose handlers wait
// (transport.Waiting) let the other keys through, but not the later records of their
// own keys; once resumed and acked, those follow.
func TestWaitingGivesUpSlot(t *testing.T) { inBothModes(t, testWaitingGivesUpSlot) }

func testWaitingGivesUpSlot(t *testing.T) {
	l, out := newLane(t, lane.Config{Concurrency: 2, Buffer: 64})
	keys := []string{"a", "b", "c", "a", "d", "b", "e"}
	l.Push(records(0, len(keys), func(i int) string { return keys[i] })...)
	first := []*message.Message{<-out, <-out}
	var resumes []func()
	for _, m := range first {
		resumes = append(resumes, transport.Waiting(m.Context()))
	}
	others := map[int64]bool{} // c, d, e: a and b wait; two free slots, so in no set order
	for range 3 {
		m := <-out
		others[offsetOf(m)] = true
		m.Ack()
	}
	if !others[2] || !others[4] || !others[6] {
		t.Fatalf("delivered offsets %v while a and b wait; want 2, 4 and 6", others)
	}
	select {
	case m := <-out:
		t.Fatalf("offset %d (key %s) delivered while its key's earlier record waits", offsetOf(m), m.Metadata.Get("key"))
	case <-time.After(50 * time.Millisecond):
	}
	for i, m := range first {
		resumes[i]()
		m.Ack()
	}
	got := map[int64]bool{}
	for range 2 {
		m := <-out
		got[offsetOf(m)] = true
		m.Ack()
	}
	if !got[3] || !got[5] {
		t.Fatalf("after the waits, delivered %v; want offsets 3 and 5", got)
	}
	deadline := time.Now().Add(10 * time.Second) // acks settle on the lane's workers
	for next, _ := l.Watermark(); next != 7; next, _ = l.Watermark() {
		if time.Now().After(deadline) {
			t.Fatalf("watermark %d after every record was acked; want 7", next)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPushWhileFullStaysFull: a push into a lane that is full and has not drained to
// half its Buffer leaves it full, so the transport, which paused the partition, hears
// OnRoom once it drains to half (a push that cleared Full silently left the partition
// paused for good). With Concurrency 1 one worker settles each message before it hands
// out the next, so receiving message n+1 means message n was settled.
func TestPushWhileFullStaysFull(t *testing.T) { inBothModes(t, testPushWhileFullStaysFull) }

func testPushWhileFullStaysFull(t *testing.T) {
	room := make(chan struct{}, 8)
	l, out := newLane(t, lane.Config{Concurrency: 1, Buffer: 8, OnRoom: func() { room <- struct{}{} }})
	if !l.Push(records(0, 8, func(int) string { return "" })...) {
		t.Fatal("a lane of Buffer 8 holding 8 is not full")
	}
	m := <-out
	for range 3 {
		m.Ack()
		m = <-out
	}
	// 0, 1 and 2 settled: 5 held
	if full := l.Push(records(8, 1, func(int) string { return "" })...); !full || !l.Full() {
		t.Fatalf("a push into a full lane holding 6 (not drained to 4) reported full=%v, Full()=%v; want true until OnRoom", full, l.Full())
	}
	m.Ack()
	m = <-out // 3 settled: 5 held
	select {
	case <-room:
		t.Fatal("OnRoom while 5 of Buffer 8 are held")
	default:
	}
	m.Ack()
	m = <-out // 4 settled: 4 held, drained to half
	select {
	case <-room:
	default:
		t.Fatal("no OnRoom once the lane drained to half its Buffer")
	}
	if l.Full() {
		t.Fatal("Full after OnRoom")
	}
	m.Ack()
	for range 3 {
		(<-out).Ack()
	}
}
