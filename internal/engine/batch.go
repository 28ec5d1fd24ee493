package engine

import (
	"context"
	"sync"
	"time"

	"github.com/pubsubkit/pubsub/transport"
)

// Batcher gathers the messages of a batch subscription into batches and hands each
// batch to one call of its handler. Every message still runs its own chain (trust,
// tracing, observe, dead letter, retry, recover, decode) on its own engine
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
//
// Ordered (in-place retries), the Batcher also keeps the order of each key, for
// messages whose delivery context answers a transport.KeyOrder (several messages of a
// key in flight, see transport.SubscribeOptions.KeyConcurrency):
//
//   - an item is admitted only in its key's turn (KeyOrder.Ready), so a key's items
//     are admitted in offset order;
//   - a key's items are in one batch at a time: while a batch holding some is handed
//     over and handled, the later ones wait (queued, in order) and go to a batch after
//     it;
//   - when an item fails, it blocks its key until its chain is done (Done) or it
//     comes back: nothing of the key is admitted meanwhile. One that will be retried
//     (Retried): the later items of its key in that batch get no outcome (they are not
//     failed attempts) and wait, queued before those that arrived since, until it
//     comes back for its retry (it is admitted, and the queue after it, in order) or
//     fails for good. One that failed for good: the later items of its key in that
//     batch keep their outcomes until its chain is done; acked (its dead letter
//     stored), they get them and the queue goes on; nacked, it comes back under its
//     id and they wait for it as behind a retry;
//   - a key's record is dropped once none of its items is in Do and none blocks it;
//   - when a whole batch failed (Run reports whole), the items that will be retried
//     come back together: the first to return waits for the others (or for their
//     delivery to end, or the drain), and they form one batch, in their order, with
//     the queued items of their keys after them as room allows;
//   - an item that waits in a queue (or for its outcome behind a blocker) and whose
//     delivery ends, or the drain begins, leaves with the error Held, and so do the
//     rest of its key's waiting items and every later item of that key: they are
//     redelivered later, in order.
//
// Do's ctx is the handler context of the item (its values, the engine's handler
// lifetime); Run gets the first item's, and bounds the call itself (a Timeout per
// batch attempt).
type Batcher[T any] struct {
	cfg   BatchConfig[T]
	slots chan struct{}

	mu       sync.Mutex
	cur      *batch[T]            // the batch taking items now, nil when none
	keys     map[any]*keyState[T] // Ordered: the keys with an item in Do or a blocker
	groups   map[any]*group[T]    // Ordered: the whole-batch failures coming back, by item id
	blockers map[any]any          // Ordered: the key each blocker's id blocks, by id
}

// BatchConfig configures a Batcher.
type BatchConfig[T any] struct {
	Max         int           // items per batch, at least 1
	Wait        time.Duration // how long the first item waits for more
	Concurrency int           // batches handled at once; below 1 means 1
	Stop        <-chan struct{}
	// Run handles one batch and returns one outcome per item, in order (a nil slice
	// means every item succeeded), and whether the batch failed as a whole (one error
	// for all, not per item). ctx is the context of the batch's first item.
	Run func(ctx context.Context, items []T) (errs []error, whole bool)

	// Ordered turns on the key order and the regrouping of whole-batch failures (see
	// Batcher). Retried reports whether item v, failed with err, will come to Do again
	// (an in-place retry); ID identifies an item across its attempts (comparable, not
	// nil). Held is what Do returns for an item that leaves a queue unhandled: an error
	// that has the message redelivered (not dead-lettered).
	Ordered bool
	Retried func(v T, err error) bool
	ID      func(v T) any
	Held    error
}

// batch is one batch: filling (cur) until sealed, then handed over and handled.
type batch[T any] struct {
	entries []*entry[T]
	full    chan struct{} // closed when the batch reached max items
	sealed  bool          // handed over: takes no more items
}

// entry is one call of Do.
type entry[T any] struct {
	v        T
	id       any
	key      any // Ordered: the KeyOrder's key; nil when not ordered by key
	ctx      context.Context
	delivery context.Context
	done     chan error     // the outcome
	lead     chan *batch[T] // a queued entry that became the first of a new batch
	queued   bool           // waiting in its key's queue, under mu
	deferred bool           // waiting in its key's deferred items, under mu
	outcome  error          // a deferred entry's outcome, under mu
}

// keyState is what the Batcher knows of one key, Ordered. It is dropped once no item
// of the key is in Do and none blocks it (tidy).
type keyState[T any] struct {
	batch    *batch[T]       // the batch holding the key's latest items, nil when none
	blocker  any             // the id of the failed item whose chain the key waits for
	blocking context.Context // the blocker's delivery context
	queue    []*entry[T]     // items waiting, in order
	deferred []*entry[T]     // items handled after the blocker, failed for good, in one batch: their outcomes wait
	broken   bool            // a queued item left unhandled: every later item leaves too
	refs     int             // items of the key in Do
}

// group is a whole-batch failure's items coming back for their retry, Ordered.
type group[T any] struct {
	order   []any             // the ids, in batch order
	arrived map[any]*entry[T] // by id
	gone    map[any]bool      // ids whose delivery ended before they came back
	ready   chan struct{}     // closed once every id arrived or is gone
	closed  bool
	stops   []func() bool
}

// NewBatcher returns a Batcher for cfg.
func NewBatcher[T any](cfg BatchConfig[T]) *Batcher[T] {
	cfg.Max = max(cfg.Max, 1)
	return &Batcher[T]{cfg: cfg, slots: make(chan struct{}, max(cfg.Concurrency, 1)),
		keys: map[any]*keyState[T]{}, groups: map[any]*group[T]{}, blockers: map[any]any{}}
}

// Do adds v to a batch and returns v's outcome once that batch was handled. ctx is
// v's handler context; delivery is v's delivery context, whose end (a revoked
// partition) hands the batch over at once when v is its first item.
func (b *Batcher[T]) Do(ctx, delivery context.Context, v T) error {
	e := &entry[T]{v: v, ctx: ctx, delivery: delivery, done: make(chan error, 1)}
	var order transport.KeyOrder
	if b.cfg.Ordered {
		e.id, e.lead = b.cfg.ID(v), make(chan *batch[T], 1)
		if k, ok := transport.KeyOrderFrom(delivery); ok {
			order, e.key = k, k.Key()
			select {
			case <-k.Ready():
			case <-delivery.Done():
			}
			if delivery.Err() != nil {
				// Its partition was revoked: the later items of its key leave too, so
				// none is handled before it.
				return b.cfg.Held
			}
		}
	}
	b.mu.Lock()
	if e.key != nil {
		b.keyState(e.key).refs++
		defer b.leave(e.key)
	}
	next, bt, g := b.place(e)
	b.mu.Unlock()
	if order != nil {
		order.Pass()
	}
	switch next {
	case leadBatch:
		return b.leadBatch(e, bt)
	case leadGroup:
		return b.leadGroup(e, g)
	case held:
		return b.cfg.Held
	}
	return b.await(e)
}

// What an entry's goroutine does once placed.
type next int

const (
	join      next = iota // wait for the outcome of the batch it joined
	leadBatch             // it is the first of a new batch: wait for more, then hand over
	leadGroup             // it is the first of its group back: wait for the others
	queued                // it waits in its key's queue
	held                  // it leaves at once (its key is broken)
)

func (b *Batcher[T]) stopped() bool {
	select {
	case <-b.cfg.Stop:
		return true
	default:
		return false
	}
}

// place puts e where it goes now. mu is held.
func (b *Batcher[T]) place(e *entry[T]) (next, *batch[T], *group[T]) {
	if g := b.groups[e.id]; e.id != nil && g != nil {
		g.arrived[e.id] = e
		b.checkGroup(g)
		if len(g.arrived) == 1 {
			return leadGroup, nil, g
		}
		return join, nil, nil
	}
	var ks *keyState[T]
	if e.key != nil {
		if e.delivery.Err() != nil {
			// Revoked since its turn came (see Do): the record of a key it broke may
			// be gone already, so it leaves as the key's other items did.
			return held, nil, nil
		}
		ks = b.keyState(e.key)
		retry := ks.blocker != nil && ks.blocker == e.id
		wait := !retry && (ks.blocker != nil || len(ks.queue) > 0 || ks.batch != nil && ks.batch.sealed)
		switch {
		case ks.broken || wait && b.stopped():
			b.breakKey(ks)
			return held, nil, nil
		case wait:
			e.queued = true
			ks.queue = append(ks.queue, e)
			return queued, nil, nil
		case retry:
			ks.blocker = nil
			delete(b.blockers, e.id)
		}
	}
	bt, first := b.add(e)
	if ks != nil {
		b.release(ks)
	}
	if first {
		return leadBatch, bt, nil
	}
	return join, nil, nil
}

// leave records that an item of key left Do. mu is not held.
func (b *Batcher[T]) leave(key any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ks := b.keys[key]; ks != nil {
		ks.refs--
		b.tidy(key, ks)
	}
}

// tidy drops the record of key once no item of the key is in Do and none blocks it
// (a blocker's chain ends with Done, or it comes back). A key broken by a revoke goes
// with its last item, blocker or not: every later item of its partition's delivery
// leaves before it reaches the key (its delivery ended, see Do). One broken by the
// drain stays, so that the items of the key still in flight leave too (the Batcher
// ends with the drain). mu is held.
func (b *Batcher[T]) tidy(key any, ks *keyState[T]) {
	if ks.refs > 0 || ks.broken && b.stopped() || !ks.broken && ks.blocker != nil {
		return
	}
	if ks.blocker != nil {
		delete(b.blockers, ks.blocker)
	}
	delete(b.keys, key)
}

// Done tells the Batcher that the chain of the item with id ended with err (nil: the
// message is acked; an error: it is nacked and comes again). Ordered, the caller calls
// it for every item once its chain returned (Retry and DeadLetter are done with it):
// a key whose item failed waits for it. An item retried in place comes back to Do
// first; one that failed for good holds its key's later items until its dead letter
// was stored (err nil: they go on, with the outcomes they had) or failed (err: it is
// redelivered, under the same id, and they wait for it as behind an in-place retry:
// they get no outcome and are handed over again after it, or leave with Held on
// drain or revoke; so none is acked before it).
func (b *Batcher[T]) Done(id any, err error) {
	if !b.cfg.Ordered {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	key, ok := b.blockers[id]
	if !ok {
		return
	}
	delete(b.blockers, id)
	ks := b.keys[key]
	if ks == nil || ks.blocker != id {
		return
	}
	deferred := ks.deferred
	ks.deferred = nil
	for _, e := range deferred {
		e.deferred = false
	}
	switch {
	case err != nil && (ks.blocking.Err() != nil || b.stopped()):
		// Its partition was revoked or the drain began: it does not come back here,
		// and the rest of its key leaves too.
		ks.blocker = nil
		for _, e := range deferred {
			e.done <- b.cfg.Held
		}
		b.breakKey(ks)
	case err != nil:
		// It comes again, under its id: the key waits for it (blocker and blockers stay).
		b.blockers[id] = key
		b.holdBack(ks, deferred)
	default:
		ks.blocker = nil
		b.settle(ks, deferred, func(e *entry[T]) error { return e.outcome })
		b.release(ks)
	}
	b.tidy(key, ks)
}

// settle gives es, items of ks in order that were handled, their outcomes (outcome):
// the first that failed blocks the key (its chain is awaited, see Done); after one
// that will be retried in place, the later ones get no outcome and go back to the
// front of the queue; after one that failed for good, their outcomes wait for its
// chain (deferred). mu is held.
func (b *Batcher[T]) settle(ks *keyState[T], es []*entry[T], outcome func(*entry[T]) error) {
	var heldBack []*entry[T]
	for i, e := range es {
		err := outcome(e)
		if err == nil {
			e.done <- nil
			continue
		}
		ks.blocker, ks.blocking = e.id, e.delivery
		b.blockers[e.id] = e.key
		rest := es[i+1:]
		e.done <- err
		if !b.cfg.Retried(e.v, err) {
			for _, d := range rest {
				d.outcome, d.deferred = outcome(d), true
			}
			ks.deferred = append(ks.deferred, rest...)
			return
		}
		heldBack = rest
		break
	}
	b.holdBack(ks, heldBack)
}

// holdBack puts es, items of ks handled behind its blocker, back at the front of its
// queue, with no outcome; they leave at once (breakKey) when the drain began or the
// delivery of one ended. mu is held.
func (b *Batcher[T]) holdBack(ks *keyState[T], es []*entry[T]) {
	if len(es) == 0 {
		return
	}
	gone := b.stopped()
	for _, e := range es {
		e.queued = true
		gone = gone || e.delivery.Err() != nil
	}
	ks.queue = append(es, ks.queue...)
	if gone {
		b.breakKey(ks)
	}
}

func (b *Batcher[T]) keyState(key any) *keyState[T] {
	ks := b.keys[key]
	if ks == nil {
		ks = &keyState[T]{}
		b.keys[key] = ks
	}
	return ks
}

// add puts e in the batch taking items, starting one when there is none (first: e
// leads it). mu is held.
func (b *Batcher[T]) add(e *entry[T]) (bt *batch[T], first bool) {
	first = b.cur == nil
	if first {
		b.cur = &batch[T]{full: make(chan struct{})}
	}
	bt = b.cur
	bt.entries = append(bt.entries, e)
	if e.key != nil {
		b.keys[e.key].batch = bt
	}
	if len(bt.entries) >= b.cfg.Max {
		close(bt.full)
		bt.sealed = true
		b.cur = nil
	}
	return bt, first
}

// release moves the queue of ks into batches, in order, while the key is neither
// blocked nor in a batch handed over. An entry that starts a batch is told to lead
// it. mu is held.
func (b *Batcher[T]) release(ks *keyState[T]) {
	for len(ks.queue) > 0 && ks.blocker == nil && !ks.broken && (ks.batch == nil || !ks.batch.sealed) {
		e := ks.queue[0]
		ks.queue = ks.queue[1:]
		e.queued = false
		if bt, first := b.add(e); first {
			e.lead <- bt
		}
	}
}

// breakKey makes every queued item of ks, and every later item of its key, leave
// with Held. mu is held.
func (b *Batcher[T]) breakKey(ks *keyState[T]) {
	ks.broken = true
	for _, e := range ks.deferred {
		e.deferred = false
		e.done <- b.cfg.Held
	}
	for _, e := range ks.queue {
		e.queued = false
		e.done <- b.cfg.Held
	}
	ks.queue, ks.deferred = nil, nil
}

// await waits for e's outcome. Ordered, e may also be held back into its key's queue
// (finish), be told to lead a new batch (release), or leave its queue unhandled when
// its delivery ends or the drain begins (with the rest of its key: breakKey; finish
// does so for an item held back after either happened).
func (b *Batcher[T]) await(e *entry[T]) error {
	if !b.cfg.Ordered {
		return <-e.done
	}
	leave := e.delivery.Done()
	stop := b.cfg.Stop
	for {
		select {
		case bt := <-e.lead:
			return b.leadBatch(e, bt)
		case err := <-e.done:
			return err
		case <-leave:
			leave = nil
		case <-stop:
			stop = nil
		}
		b.mu.Lock()
		if e.queued || e.deferred {
			b.breakKey(b.keys[e.key]) // e among them
		}
		b.mu.Unlock()
	}
}

// leadBatch waits, as the first item of bt, for the batch to fill (or its wait to
// run out, the drain, the end of e's delivery), hands it over and handles it.
func (b *Batcher[T]) leadBatch(e *entry[T], bt *batch[T]) error {
	if b.cfg.Wait > 0 {
		timer := time.NewTimer(b.cfg.Wait)
		select {
		case <-bt.full:
		case <-timer.C:
		case <-b.cfg.Stop:
		case <-e.delivery.Done():
		case <-e.ctx.Done():
		}
		timer.Stop()
	}
	b.mu.Lock()
	if b.cur == bt {
		b.cur = nil
	}
	bt.sealed = true
	b.mu.Unlock()
	b.handle(e.ctx, bt)
	return b.await(e)
}

// leadGroup waits, as the first item of g back, for the others (or the drain), then
// hands them over as one batch, in their order, with their keys' queues after them
// as room allows.
func (b *Batcher[T]) leadGroup(e *entry[T], g *group[T]) error {
	select {
	case <-g.ready:
	case <-b.cfg.Stop:
	}
	b.mu.Lock()
	for _, stop := range g.stops {
		stop()
	}
	bt := &batch[T]{full: make(chan struct{}), sealed: true}
	var keys []*keyState[T]
	for _, id := range g.order {
		if b.groups[id] == g {
			delete(b.groups, id)
		}
		m := g.arrived[id]
		if m == nil {
			continue
		}
		bt.entries = append(bt.entries, m)
		if m.key != nil {
			ks := b.keyState(m.key)
			if ks.blocker == id {
				ks.blocker = nil
				delete(b.blockers, id)
			}
			ks.batch = bt
			keys = append(keys, ks)
		}
	}
	for _, ks := range keys {
		for len(ks.queue) > 0 && ks.blocker == nil && len(bt.entries) < b.cfg.Max {
			q := ks.queue[0]
			ks.queue = ks.queue[1:]
			q.queued = false
			bt.entries = append(bt.entries, q)
		}
	}
	b.mu.Unlock()
	b.handle(e.ctx, bt)
	return b.await(e)
}

// checkGroup closes g.ready once every item of g came back or is gone. mu is held.
func (b *Batcher[T]) checkGroup(g *group[T]) {
	if !g.closed && len(g.arrived)+len(g.gone) >= len(g.order) {
		g.closed = true
		close(g.ready)
	}
}

// handle runs one batch once a slot is free and gives every item its outcome.
func (b *Batcher[T]) handle(ctx context.Context, bt *batch[T]) {
	items := make([]T, len(bt.entries))
	for i, e := range bt.entries {
		items[i] = e.v
	}
	var errs []error
	var whole bool
	select {
	case b.slots <- struct{}{}:
		errs, whole = b.cfg.Run(ctx, items)
		<-b.slots
	case <-ctx.Done():
		errs, whole = make([]error, len(items)), true
		for i := range errs {
			errs[i] = ctx.Err()
		}
	}
	b.finish(bt, errs, whole)
}

// finish gives the items of a handled batch their outcomes and, Ordered, holds back
// the later items of a key whose item will be retried, regroups a whole-batch
// failure, and lets the keys' queues go on.
func (b *Batcher[T]) finish(bt *batch[T], errs []error, whole bool) {
	outcome := func(i int) error {
		if i < len(errs) {
			return errs[i]
		}
		return nil
	}
	if !b.cfg.Ordered {
		for i, e := range bt.entries {
			e.done <- outcome(i)
		}
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	byKey := map[any][]*entry[T]{} // the keyed entries, in order
	var keys []any
	first := map[any]*entry[T]{} // the first failed entry of each key: its blocker
	for i, e := range bt.entries {
		e.outcome = outcome(i)
		if e.key == nil {
			continue
		}
		if _, ok := byKey[e.key]; !ok {
			keys = append(keys, e.key)
		}
		byKey[e.key] = append(byKey[e.key], e)
		if e.outcome != nil && first[e.key] == nil {
			first[e.key] = e
		}
		if ks := b.keyState(e.key); ks.batch == bt {
			ks.batch = nil
		}
	}
	if whole {
		// The items to be retried come back as one batch: each key's blocker (the
		// later items of its key are held back behind it) and the items without a key.
		var regroup []*entry[T]
		for _, e := range bt.entries {
			if e.outcome != nil && (e.key == nil || first[e.key] == e) && b.cfg.Retried(e.v, e.outcome) {
				regroup = append(regroup, e)
			}
		}
		if len(regroup) > 0 {
			b.regroup(regroup)
		}
	}
	for _, e := range bt.entries {
		if e.key == nil {
			e.done <- e.outcome
		}
	}
	for _, key := range keys {
		ks := b.keys[key]
		b.settle(ks, byKey[key], func(e *entry[T]) error { return e.outcome })
		b.release(ks)
		b.tidy(key, ks)
	}
}

// regroup registers the items of a whole-batch failure that will be retried, so that
// they come back as one batch. mu is held.
func (b *Batcher[T]) regroup(es []*entry[T]) {
	g := &group[T]{arrived: map[any]*entry[T]{}, gone: map[any]bool{}, ready: make(chan struct{})}
	for _, e := range es {
		g.order = append(g.order, e.id)
		b.groups[e.id] = g
	}
	for _, e := range es {
		id := e.id
		g.stops = append(g.stops, context.AfterFunc(e.delivery, func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			if b.groups[id] == g && g.arrived[id] == nil {
				g.gone[id] = true
				delete(b.groups, id) // it will not come back: no record of it stays
				b.checkGroup(g)
			}
		}))
	}
}

// records counts the keys and whole-batch failures the Batcher keeps a record of, for
// tests: none once every item left and every blocker's chain was done.
func (b *Batcher[T]) records() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.keys) + len(b.groups) + len(b.blockers)
}
