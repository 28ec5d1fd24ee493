package lane_test

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/internal/lane"
)

func keyOrder(t *testing.T, m *message.Message) transport.KeyOrder {
	t.Helper()
	k, ok := transport.KeyOrderFrom(m.Context())
	if !ok {
		t.Fatalf("message %d answers no KeyOrder", offsetOf(m))
	}
	return k
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// TestKeyConcurrency: with KeyConcurrency 3, three messages of one key go at once, in
// offset order, and no fourth until one settles; each answers a KeyOrder whose Ready
// follows the Pass (or settle) of the earlier ones of its key; another key and a
// message without a key are not held back by them.
func TestKeyConcurrency(t *testing.T) { inBothModes(t, testKeyConcurrency) }

func testKeyConcurrency(t *testing.T) {
	l, out := newLane(t, lane.Config{Concurrency: 8, KeyConcurrency: 3})
	recs := records(0, 5, func(int) string { return "a" })
	recs = append(recs, lane.Record{Offset: 5, Key: "b", Keyed: true}, lane.Record{Offset: 6})
	l.Push(recs...)
	got := map[int64]*message.Message{}
	for range 5 { // a0, a1, a2, b5, 6 in some order
		m := <-out
		got[offsetOf(m)] = m
	}
	for _, off := range []int64{0, 1, 2, 5, 6} {
		if got[off] == nil {
			t.Fatalf("delivered %v, want offsets 0, 1, 2, 5 and 6", keysOf(got))
		}
	}
	select {
	case m := <-out:
		t.Fatalf("offset %d delivered while three of its key are in flight", offsetOf(m))
	case <-time.After(20 * time.Millisecond):
	}
	if _, ok := transport.KeyOrderFrom(got[6].Context()); ok {
		t.Error("a message without a key answers a KeyOrder")
	}
	a0, a1, a2 := keyOrder(t, got[0]), keyOrder(t, got[1]), keyOrder(t, got[2])
	if a0.Key() != a1.Key() || a0.Key() == keyOrder(t, got[5]).Key() {
		t.Error("Key does not tell keys apart")
	}
	if !isClosed(a0.Ready()) || isClosed(a1.Ready()) || isClosed(a2.Ready()) {
		t.Fatal("Ready: want only the first of the key ready")
	}
	a0.Pass()
	if !isClosed(a1.Ready()) || isClosed(a2.Ready()) {
		t.Fatal("after the first passed: want the second ready, not the third")
	}
	got[0].Ack() // settled: a3 may go; a1 not passed, so a3 is not ready
	a3 := <-out
	if offsetOf(a3) != 3 {
		t.Fatalf("got %d, want 3", offsetOf(a3))
	}
	if isClosed(keyOrder(t, a3).Ready()) {
		t.Fatal("offset 3 ready before 1 and 2 passed")
	}
	got[1].Ack() // settled without Pass: 2 is ready
	select {
	case <-a2.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("offset 2 not ready once 1 settled")
	}
	a2.Pass()
	if !isClosed(keyOrder(t, a3).Ready()) {
		t.Fatal("offset 3 not ready once 2 passed")
	}
	for _, off := range []int64{2, 5, 6} {
		got[off].Ack()
	}
	a3.Ack()
	if m := <-out; offsetOf(m) != 4 {
		t.Fatalf("got %d, want 4", offsetOf(m))
	} else {
		m.Ack()
	}
}

// TestKeyConcurrencyNack: a nacked message holds back the messages of its key not yet
// handed out until it is delivered again, even once the others of its key in flight
// settled; it comes back ready (nothing earlier of its key is in flight).
func TestKeyConcurrencyNack(t *testing.T) { inBothModes(t, testKeyConcurrencyNack) }

func testKeyConcurrencyNack(t *testing.T) {
	l, out := newLane(t, lane.Config{Concurrency: 8, KeyConcurrency: 2, NackDelay: 30 * time.Millisecond})
	l.Push(records(0, 4, func(int) string { return "a" })...)
	m0, m1 := <-out, <-out
	if offsetOf(m0) == 1 {
		m0, m1 = m1, m0
	}
	start := time.Now()
	m0.Nack()
	for deadline := time.Now().Add(10 * time.Second); l.Stats().InFlight != 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the nack never settled")
		}
	}
	m1.Ack()
	// 0 comes again after the nack delay; only then may 2 go (with it: two of the key).
	got := map[int64]*message.Message{}
	for range 2 {
		m := <-out
		got[offsetOf(m)] = m
	}
	if took := time.Since(start); got[0] == nil || got[2] == nil || took < 30*time.Millisecond {
		t.Fatalf("got %v after %v, want 0 again and 2, after the nack delay", keysOf(got), took)
	}
	if !isClosed(keyOrder(t, got[0]).Ready()) || isClosed(keyOrder(t, got[2]).Ready()) {
		t.Fatal("want the redelivered 0 ready and 2 waiting for it")
	}
	keyOrder(t, got[0]).Pass()
	if !isClosed(keyOrder(t, got[2]).Ready()) {
		t.Fatal("2 not ready once 0 passed")
	}
	got[0].Ack()
	got[2].Ack()
	if m := <-out; offsetOf(m) != 3 {
		t.Fatalf("got %d, want 3", offsetOf(m))
	} else {
		m.Ack()
	}
}

func keysOf(m map[int64]*message.Message) []int64 {
	var ks []int64
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// TestKeyConcurrencyWait: while a message of a key waits (transport.Waiting), no more
// messages of its key are handed out, even when fewer than KeyConcurrency of the key
// are in flight: its wait gives its slot to other keys, not to its own. Once the wait
// ends, the key goes on.
func TestKeyConcurrencyWait(t *testing.T) { inBothModes(t, testKeyConcurrencyWait) }

func testKeyConcurrencyWait(t *testing.T) {
	l, out := newLane(t, lane.Config{Concurrency: 3, KeyConcurrency: 2})
	keys := []string{"a", "a", "a", "b", "c"}
	l.Push(records(0, len(keys), func(i int) string { return keys[i] })...)
	got := map[int64]*message.Message{}
	for range 3 { // a0, a1 and b3
		m := <-out
		got[offsetOf(m)] = m
	}
	if got[0] == nil || got[1] == nil || got[3] == nil {
		t.Fatalf("delivered %v, want offsets 0, 1 and 3", keysOf(got))
	}
	resume := transport.Waiting(got[0].Context())
	got[1].Ack() // one of a in flight, but it waits: c4 takes the slot, not a2
	if m := <-out; offsetOf(m) != 4 {
		t.Fatalf("got %d while a0 waits, want 4 (key c)", offsetOf(m))
	}
	got[3].Ack()
	select {
	case m := <-out:
		t.Fatalf("offset %d delivered while a0 waits", offsetOf(m))
	case <-time.After(30 * time.Millisecond):
	}
	resume()
	if m := <-out; offsetOf(m) != 2 {
		t.Fatalf("got %d after a0's wait ended, want 2", offsetOf(m))
	}
}
