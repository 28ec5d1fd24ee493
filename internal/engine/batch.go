package engine

import (
	"context"
	"sync"
	"time"
)

// Batcher gathers the messages of a batch subscription into batches and hands each
// batch to one call of its handler. Every message still runs its own chain (trust,
// tracing, observe, dead letter, retry, timeout, recover, decode) on its own engine
// worker; the chain's innermost function calls Do, which waits for the message's
// batch to be handled and returns the message's own outcome. So the watermark, the
// retry stages and the dead-letter stage work per message, unchanged, and an in-place
// retry calls Do again: the handler sees only the messages that are retried (with
// whatever else arrived by then).
//
// A batch holds at most Max items. The first item of a batch waits at most Wait for
// more; it waits no longer once the batch is full, the drain begins (Stop closes), or
// the first item's delivery ends (its partition was revoked): the batch is handed over
// with what it has. At most Concurrency batches are handled at once.
type Batcher[T any] struct {
	max   int
	wait  time.Duration
	stop  <-chan struct{}
	slots chan struct{}
	run   func(ctx context.Context, items []T) []error

	mu  sync.Mutex
	cur *batch[T] // the batch taking items now, nil when none
}

type batch[T any] struct {
	items []T
	done  []chan error
	full  chan struct{} // closed when the batch reached max items
}

// BatchConfig configures a Batcher.
type BatchConfig[T any] struct {
	Max         int           // items per batch, at least 1
	Wait        time.Duration // how long the first item waits for more
	Concurrency int           // batches handled at once; below 1 means 1
	Stop        <-chan struct{}
	// Run handles one batch and returns one outcome per item, in order (a nil slice
	// means every item succeeded). ctx is the context of the batch's first item.
	Run func(ctx context.Context, items []T) []error
}

// NewBatcher returns a Batcher for cfg.
func NewBatcher[T any](cfg BatchConfig[T]) *Batcher[T] {
	return &Batcher[T]{max: max(cfg.Max, 1), wait: cfg.Wait, stop: cfg.Stop,
		slots: make(chan struct{}, max(cfg.Concurrency, 1)), run: cfg.Run}
}

// Do adds v to the batch taking items and returns v's outcome once that batch was
// handled. ctx is v's handler context; delivery is v's delivery context, whose end
// (a revoked partition) hands the batch over at once when v is its first item.
func (b *Batcher[T]) Do(ctx, delivery context.Context, v T) error {
	done := make(chan error, 1)
	b.mu.Lock()
	cur, first := b.cur, b.cur == nil
	if first {
		cur = &batch[T]{full: make(chan struct{})}
		b.cur = cur
	}
	cur.items = append(cur.items, v)
	cur.done = append(cur.done, done)
	if len(cur.items) >= b.max {
		close(cur.full)
		b.cur = nil
	}
	b.mu.Unlock()
	if !first {
		return <-done
	}
	if b.wait > 0 {
		timer := time.NewTimer(b.wait)
		select {
		case <-cur.full:
		case <-timer.C:
		case <-b.stop:
		case <-delivery.Done():
		case <-ctx.Done():
		}
		timer.Stop()
	}
	b.mu.Lock()
	if b.cur == cur {
		b.cur = nil
	}
	b.mu.Unlock()
	b.handle(ctx, cur)
	return <-done
}

// handle runs one batch once a slot is free and gives every item its outcome.
func (b *Batcher[T]) handle(ctx context.Context, cur *batch[T]) {
	var errs []error
	select {
	case b.slots <- struct{}{}:
		errs = b.run(ctx, cur.items)
		<-b.slots
	case <-ctx.Done():
		errs = make([]error, len(cur.items))
		for i := range errs {
			errs[i] = ctx.Err()
		}
	}
	for i, done := range cur.done {
		var err error
		if i < len(errs) {
			err = errs[i]
		}
		done <- err
	}
}
