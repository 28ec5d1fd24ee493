package pubsubtest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pubsubkit/pubsub"
)

// Batch is one call of a batch handler that a Batches recorded.
type Batch[T any] struct {
	Messages []*pubsub.Message[T]
	Err      error     // what the handler returned
	At       time.Time // when the call began
}

// Batches records every call of a batch handler, for tests of SubscribeBatch:
//
//	rec := pubsubtest.RecordBatches(handle)
//	pubsub.SubscribeBatch(h.Client, orders, "billing", rec.Handler, pubsub.WithBatch(100, time.Second))
//	batches := rec.Wait(t, 250) // once 250 messages were handled without failing
//
// Its methods are safe for concurrent use.
type Batches[T any] struct {
	// Handler is the batch handler to subscribe: it records the batch, then calls
	// the handler given to RecordBatches (nil: succeed).
	Handler pubsub.BatchHandler[T]
	// Timeout bounds Wait and WaitCalls; 0 means DefaultTimeout.
	Timeout time.Duration

	mu      sync.Mutex
	batches []Batch[T]
	changed chan struct{} // closed and replaced on every call
}

// RecordBatches returns a Batches around h; nil h succeeds for every batch.
func RecordBatches[T any](h pubsub.BatchHandler[T]) *Batches[T] {
	r := &Batches[T]{changed: make(chan struct{})}
	r.Handler = func(ctx context.Context, ms []*pubsub.Message[T]) error {
		at := time.Now()
		var err error
		if h != nil {
			defer func() { // a panic is recorded as a call too, then goes on
				if p := recover(); p != nil {
					r.add(Batch[T]{Messages: ms, Err: panicked{p}, At: at})
					panic(p)
				}
			}()
			err = h(ctx, ms)
		}
		r.add(Batch[T]{Messages: ms, Err: err, At: at})
		return err
	}
	return r
}

// panicked is the Err of a recorded call whose handler panicked.
type panicked struct{ value any }

func (p panicked) Error() string { return "batch handler panicked" }

func (r *Batches[T]) add(b Batch[T]) {
	r.mu.Lock()
	r.batches = append(r.batches, b)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

// Calls returns the calls recorded so far, in the order they returned.
func (r *Batches[T]) Calls() []Batch[T] {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Batch[T](nil), r.batches...)
}

// WaitCalls waits until the handler returned n times and returns the calls, or fails
// the test after Timeout.
func (r *Batches[T]) WaitCalls(t testing.TB, n int) []Batch[T] {
	t.Helper()
	return r.waitFor(t, func(bs []Batch[T]) bool { return len(bs) >= n }, n, "calls")
}

// Wait waits until n messages were handled without failing (in calls that returned
// nil, or left them out of the messages their error failed: see pubsub.Failed) and
// returns every call so far, or fails the test after Timeout.
func (r *Batches[T]) Wait(t testing.TB, n int) []Batch[T] {
	t.Helper()
	return r.waitFor(t, func(bs []Batch[T]) bool { return len(Succeeded(bs)) >= n }, n, "handled messages")
}

func (r *Batches[T]) waitFor(t testing.TB, done func([]Batch[T]) bool, n int, what string) []Batch[T] {
	t.Helper()
	timeout := r.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		bs, changed := append([]Batch[T](nil), r.batches...), r.changed
		r.mu.Unlock()
		if done(bs) {
			return bs
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("pubsubtest: waited %s for %d %s; %d calls so far, %d messages handled",
				timeout, n, what, len(bs), len(Succeeded(bs)))
			return nil
		}
	}
}

// Succeeded returns the messages that the calls handled without failing, in call
// order: every message of a call that returned nil, and of a call that returned only
// pubsub.Failed errors, the messages it did not fail. Ordered, a message held back
// behind a failed message of its key in the same call is handed over again later (see
// pubsub.SubscribeBatch): it is listed for each call, and its last listing is the one
// that counted.
func Succeeded[T any](bs []Batch[T]) []*pubsub.Message[T] {
	var ok []*pubsub.Message[T]
	for _, b := range bs {
		for _, m := range b.Messages {
			if pubsub.FailedIn(b.Err, m) == nil {
				ok = append(ok, m)
			}
		}
	}
	return ok
}
