package testsuite

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/pubsubtest"
)

// The rules of Ordered batches with several messages of one key.

// waitCalls polls rec's calls until done holds, or fails the test after timeout.
func waitCalls(t *testing.T, rec *pubsubtest.Batches[order], timeout time.Duration, what string, done func([]pubsubtest.Batch[order]) bool) []pubsubtest.Batch[order] {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		bs := rec.Calls()
		if done(bs) {
			return bs
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s; calls: %s", timeout, what, describeCalls(bs))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// describeCalls lists each call's message ids and outcome, for failure messages.
func describeCalls(bs []pubsubtest.Batch[order]) string {
	var calls []string
	for _, b := range bs {
		calls = append(calls, fmt.Sprintf("%v:%v", ids(b.Messages), b.Err))
	}
	return strings.Join(calls, " ")
}

func ids(ms []*pubsub.Message[order]) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Payload.ID)
	}
	return out
}

// finalOrder returns, per key, the ids handled without failing in call order, each
// at its last success only: a message of a key handled after an earlier one of its
// key failed in the same call is handed over again, and that later success is the one
// that counts.
func finalOrder(bs []pubsubtest.Batch[order]) map[string][]string {
	succeeded := pubsubtest.Succeeded(bs)
	last := map[string]int{}
	for i, m := range succeeded {
		last[m.Payload.ID] = i
	}
	out := map[string][]string{}
	for i, m := range succeeded {
		if last[m.Payload.ID] == i {
			out[m.Payload.Key] = append(out[m.Payload.Key], m.Payload.ID)
		}
	}
	return out
}

// inOrderWithinCalls fails the test when a call holds a key's messages out of their
// publish order (ids of one key compare by their number).
func inOrderWithinCalls(t *testing.T, bs []pubsubtest.Batch[order]) {
	t.Helper()
	for _, b := range bs {
		last := map[string]string{}
		for _, m := range b.Messages {
			if prev, ok := last[m.Payload.Key]; ok && !idBefore(prev, m.Payload.ID) {
				t.Errorf("a call holds key %s's messages out of order: %v", m.Payload.Key, ids(b.Messages))
			}
			last[m.Payload.Key] = m.Payload.ID
		}
	}
}

// idBefore compares ids made of a letter and a zero-padded or short number.
func idBefore(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// testBatchOrderPerKey: Ordered, messages of one key meet the handler in order within
// and across calls, several of a key in one call; while a Failed message of a key
// waits for its retry, the later messages of its key in that call are handed over
// again after it, in order, and none of them succeeds before it; other keys go on; a
// permanently failed message is dead-lettered at once, and the later ones of its key
// are handled once (they wait only for its dead letter to be stored).
func testBatchOrderPerKey(t *testing.T, h Harness) {
	c, tr := newClientOn(t, h)
	name := uniqueName(t, "batchorder")
	topic := pubsub.NewTopic[order](name)
	var mu sync.Mutex
	failedOnce := false
	rec := pubsubtest.RecordBatches(func(_ context.Context, ms []*pubsub.Message[order]) error {
		mu.Lock()
		defer mu.Unlock()
		var errs []error
		for _, m := range ms {
			switch {
			case m.Payload.ID == "a2" && !failedOnce:
				failedOnce = true
				errs = append(errs, pubsub.Failed(m, errors.New("a2 once")))
			case m.Payload.ID == "c2":
				errs = append(errs, pubsub.Failed(m, pubsub.Permanent(errors.New("c2 is bad"))))
			}
		}
		return errors.Join(errs...)
	})
	rec.Timeout = h.Timeout
	if err := pubsub.SubscribeBatch(c, topic, "g", rec.Handler, pubsub.WithBatch(10, 500*time.Millisecond),
		pubsub.WithDelivery(pubsub.Delivery{Retry: 3, BackoffDelay: 300 * time.Millisecond, Ordering: pubsub.Ordered, Concurrency: 2})); err != nil {
		t.Fatal(err)
	}
	dead := subscribe(t, tr, pubsub.DeadLetterTopicName(name, "g"), "inspect")
	pubsubtest.Run(t, c)
	want := map[string][]string{}
	for _, k := range []string{"a", "b", "c"} {
		for i := 1; i <= 5; i++ {
			want["k"+k] = append(want["k"+k], fmt.Sprintf("%s%d", k, i))
		}
	}
	want["kc"] = []string{"c1", "c3", "c4", "c5"} // c2 is dead-lettered
	publishOrders(t, c, topic, "ka", "a1", "a2", "a3", "a4", "a5")
	publishOrders(t, c, topic, "kb", "b1", "b2", "b3", "b4", "b5")
	publishOrders(t, c, topic, "kc", "c1", "c2", "c3", "c4", "c5")
	calls := waitCalls(t, rec, h.Timeout, "every message handled", func(bs []pubsubtest.Batch[order]) bool {
		got := finalOrder(bs)
		return len(got["ka"]) == 5 && len(got["kb"]) == 5 && len(got["kc"]) == 4
	})
	if l := receive(t, dead, 1, h.Timeout)[0]; l.Metadata.Get(metadata.Key) != "kc" ||
		!strings.Contains(l.Metadata.Get(metadata.DeadLetterReason), "c2 is bad") {
		t.Errorf("dead letter of key %s with reason %q, want c2's", l.Metadata.Get(metadata.Key), l.Metadata.Get(metadata.DeadLetterReason))
	}
	inOrderWithinCalls(t, calls)
	got := finalOrder(calls)
	for k, ids := range want {
		if strings.Join(got[k], ",") != strings.Join(ids, ",") {
			t.Errorf("key %s handled in the order %v, want %v (calls: %s)", k, got[k], ids, describeCalls(calls))
		}
	}
	// Each message of kb and kc succeeds once: only a retried failure hands its key's
	// later messages over again. a2 succeeds once, after its failure.
	seen := map[string]int{}
	for _, m := range pubsubtest.Succeeded(calls) {
		seen[m.Payload.ID]++
	}
	for _, id := range []string{"a1", "a2", "b1", "b2", "b3", "b4", "b5", "c1", "c3", "c4", "c5"} {
		if seen[id] != 1 {
			t.Errorf("%s succeeded %d times, want once (calls: %s)", id, seen[id], describeCalls(calls))
		}
	}
	// No later message of ka succeeds before a2 did: every success of a3..a5 that came
	// before a2's is in the very call where a2 failed, and is handed over again.
	a2ok := -1
	for i, b := range calls {
		for _, m := range b.Messages {
			if m.Payload.ID == "a2" && pubsub.FailedIn(b.Err, m) == nil {
				a2ok = i
			}
		}
	}
	for i, b := range calls[:max(a2ok, 0)] {
		failedHere := false
		for _, m := range b.Messages {
			if m.Payload.ID == "a2" {
				failedHere = true
			}
			if m.Payload.Key == "ka" && idBefore("a2", m.Payload.ID) && !failedHere {
				t.Errorf("call %d handed %s over before a2 (calls: %s)", i, m.Payload.ID, describeCalls(calls))
			}
		}
	}
	several := false
	for _, b := range calls {
		keys := map[string]int{}
		for _, m := range b.Messages {
			keys[m.Payload.Key]++
			several = several || keys[m.Payload.Key] > 1
		}
	}
	if !several {
		t.Errorf("no call held two messages of one key (calls: %s)", describeCalls(calls))
	}
}

// testBatchSeveralPerKey: Ordered, the messages of one key fill batches (at most max,
// more than one), and across batches and within each they meet the handler in publish
// order, each once.
func testBatchSeveralPerKey(t *testing.T, h Harness) {
	c := newClient(t, h)
	topic := pubsub.NewTopic[order](uniqueName(t, "batchkey"))
	rec := subscribeRecorded(t, h, c, topic, pubsub.WithBatch(8, time.Second),
		pubsub.WithDelivery(pubsub.Delivery{Ordering: pubsub.Ordered, Concurrency: 3}))
	pubsubtest.Run(t, c)
	var want []string
	for i := range 30 {
		want = append(want, fmt.Sprintf("m%02d", i))
	}
	publishOrders(t, c, topic, "hot", want...)
	calls := rec.Wait(t, len(want))
	if got := ids(pubsubtest.Succeeded(calls)); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("handled %v, want %v in order, each once", got, want)
	}
	biggest := 0
	for _, b := range calls {
		if len(b.Messages) > 8 {
			t.Errorf("a batch of %d, want at most 8", len(b.Messages))
		}
		biggest = max(biggest, len(b.Messages))
	}
	if biggest < 2 {
		t.Errorf("every batch held one message of the key (calls: %s)", describeCalls(calls))
	}
}

// testBatchWholeRetriedAsBatch: Ordered, a batch that fails as a whole is retried as
// that batch (the same messages, in the same order, in one call) after the backoff,
// and once its retries are exhausted each message is dead-lettered with the batch's
// error. A transport that hands out one message at a time runs it with batches of one.
func testBatchWholeRetriedAsBatch(t *testing.T, h Harness) {
	c, tr := newClientOn(t, h)
	name := uniqueName(t, "batchregroup")
	topic := pubsub.NewTopic[order](name)
	rec := pubsubtest.RecordBatches(func(context.Context, []*pubsub.Message[order]) error {
		return errors.New("database down")
	})
	rec.Timeout = h.Timeout
	const retries = 2
	if err := pubsub.SubscribeBatch(c, topic, "g", rec.Handler, batchOf(tr, 10),
		pubsub.WithDelivery(pubsub.Delivery{Retry: retries, BackoffDelay: 50 * time.Millisecond, Ordering: pubsub.Ordered})); err != nil {
		t.Fatal(err)
	}
	dead := subscribe(t, tr, pubsub.DeadLetterTopicName(name, "g"), "inspect")
	pubsubtest.Run(t, c)
	publishOrders(t, c, topic, "", "w", "x", "y", "z") // a key each
	letters := receive(t, dead, 4, h.Timeout)
	for _, l := range letters {
		if r := l.Metadata.Get(metadata.DeadLetterReason); !strings.Contains(r, "database down") {
			t.Errorf("dead letter of key %s with reason %q, want the batch's error", l.Metadata.Get(metadata.Key), r)
		}
	}
	calls := rec.Calls()
	// Every call is a batch handled 1 + retries times: the same messages, in order.
	times := map[string]int{}
	seen := map[string]int{}
	for _, b := range calls {
		times[strings.Join(ids(b.Messages), ",")]++
		for _, m := range b.Messages {
			seen[m.Payload.ID]++
		}
	}
	for batch, n := range times {
		if n != 1+retries {
			t.Errorf("batch [%s] handled %d times, want %d: a whole-batch failure is retried as that batch (calls: %s)",
				batch, n, 1+retries, describeCalls(calls))
		}
	}
	for _, id := range []string{"w", "x", "y", "z"} {
		if seen[id] != 1+retries {
			t.Errorf("%s handled %d times, want %d (calls: %s)", id, seen[id], 1+retries, describeCalls(calls))
		}
	}
}

// testBatchHotKeyRetry: Ordered, while a message of a hot key waits for its in-place
// retry, the later messages of its key wait with it and the other keys' messages are
// all handled: the key holds back only itself, however many of its messages were
// published after the failed one (the transport hands out at most a batch of one key,
// and none while the failed one waits).
func testBatchHotKeyRetry(t *testing.T, h Harness) {
	c := newClient(t, h)
	topic := pubsub.NewTopic[order](uniqueName(t, "batchhotkey"))
	rec := pubsubtest.RecordBatches(func(_ context.Context, ms []*pubsub.Message[order]) error {
		for _, m := range ms {
			if m.Payload.ID == "h00" {
				return pubsub.Failed(m, errors.New("h00 fails"))
			}
		}
		return nil
	})
	rec.Timeout = h.Timeout
	// The retry waits far longer than the test: the other keys must not wait for it.
	if err := pubsub.SubscribeBatch(c, topic, "g", rec.Handler, pubsub.WithBatch(5, time.Second),
		pubsub.WithDelivery(pubsub.Delivery{Retry: 1, BackoffDelay: time.Hour, Ordering: pubsub.Ordered, Concurrency: 1})); err != nil {
		t.Fatal(err)
	}
	pubsubtest.Run(t, c)
	var hot, others []string
	for i := range 30 {
		hot = append(hot, fmt.Sprintf("h%02d", i))
	}
	for i := range 40 {
		others = append(others, fmt.Sprintf("o%02d", i))
	}
	publishOrders(t, c, topic, "hot", hot...)
	publishOrders(t, c, topic, "", others...) // a key each
	calls := waitCalls(t, rec, h.Timeout, "every other key's message handled while h00 waits", func(bs []pubsubtest.Batch[order]) bool {
		done := map[string]bool{}
		for _, m := range pubsubtest.Succeeded(bs) {
			done[m.Payload.ID] = true
		}
		for _, id := range others {
			if !done[id] {
				return false
			}
		}
		return true
	})
	// The later messages of the key in h00's call get no outcome (they are handed over
	// again after it): no other call holds a message of the key.
	for _, b := range calls {
		if slices.Contains(ids(b.Messages), "h00") {
			continue
		}
		for _, m := range b.Messages {
			if m.Payload.Key == "hot" {
				t.Errorf("%s of the hot key handed over while h00 waits for its retry (calls: %s)", m.Payload.ID, describeCalls(calls))
			}
		}
	}
}
