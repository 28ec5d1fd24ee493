// Package lane hands out the messages of one partition to a subscription's handlers
// under its concurrency rules, and keeps the partition's watermark: the lowest offset
// not yet finished, which is what the group commits. The memory and Kafka transports
// both deliver through it, so they share one implementation of the rules of
// transport.SubscribeOptions.
//
// A Lane holds the records pushed to it in offset order. Concurrency workers each take
// the lowest-offset record that may go now, and either run the subscription's handler
// on it (Config.Handle) and settle it by the result, or send it on the subscription's
// channel and wait for its ack or nack:
//
//   - at most Concurrency records are in flight (a nacked record waiting for its
//     redelivery keeps its slot; a record whose handler waits, see transport.Waiter,
//     gives its slot up while it waits, when Concurrency is above 1, and ordered no
//     more records of its key go out until its wait ends);
//   - ordered (not Unordered): a record whose key has an earlier record in flight or
//     waiting for redelivery waits too, so each key goes one at a time in offset order;
//     with KeyConcurrency above 1, up to that many records of a key go at once, in
//     offset order, each message's context answering a transport.KeyOrder (its place
//     among its key's records in flight), and a record waiting for redelivery still
//     holds back the records of its key not yet handed out;
//   - a nacked record comes back after NackDelay, before every later record of its key
//     (and with Concurrency 1 before every later record);
//   - an acked record is finished; the watermark passes every finished record at the
//     front.
//
// Stop ends a lane when its partition is revoked or its subscription ends: nothing new
// goes out, redelivery waits end, the context of every message ends, and the records
// in flight may still finish within the drain time before the final watermark is read.
package lane

import (
	"context"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/transport"
)

// Record is one record of the partition, as the transport pushes it.
type Record struct {
	Offset int64
	// Time is the record's timestamp, given to the delivered message's Position.
	Time time.Time
	// Key orders the record with the others of its key when Keyed.
	Key   string
	Keyed bool
	// Data is the transport's own record, given back to Config.Build.
	Data any
}

// Config configures one lane.
type Config struct {
	Partition int32
	// Concurrency is how many records may be in flight at once; below 1 means 1.
	Concurrency int
	// Unordered drops the one-at-a-time rule for records of one key.
	Unordered bool
	// KeyConcurrency is how many records of one key may be in flight at once when
	// ordered (see transport.SubscribeOptions.KeyConcurrency); below 1 means 1.
	KeyConcurrency int
	// Buffer is how many records the lane holds (in flight, waiting, or finished ahead
	// of the watermark) before Full reports true; the transport then pushes it nothing
	// more until OnRoom is called. Below Concurrency means Concurrency.
	Buffer int
	// NackDelay is how long a nacked record waits before it is delivered again.
	NackDelay time.Duration
	// Handle, when set, is run by the worker that takes a message, which settles the
	// message by its result (nil: acked, an error: nacked); Out is then unused. A call
	// still running when Stop gives up on the records in flight is not waited for, and
	// its result is dropped.
	Handle func(*message.Message) error
	// Out receives the delivered messages when Handle is nil; several lanes may share
	// it.
	Out chan<- *message.Message
	// Context is the parent of every delivered message's context. Stop ends the
	// messages' contexts; so does the end of Context.
	Context context.Context
	// Build makes the message for one delivery of a record; a record delivered again
	// gets a new message. The lane sets its context.
	Build func(r *Record) *message.Message
	// OnProgress, when set, is called with the new watermark each time it moves, from
	// the worker that moved it, without the lane's lock.
	OnProgress func(next int64)
	// OnRoom, when set, is called once a full lane has drained to half its Buffer.
	OnRoom func()
}

type state uint8

const (
	waiting  state = iota // pushed, not handed out
	inFlight              // handed out, awaiting ack or nack
	nacked                // nacked, waiting until due
	done                  // acked
)

type entry struct {
	rec   Record
	state state
	due   time.Time
}

// NewMessage makes the message of one delivery, for Config.Build: message.NewMessage's,
// or, for a lane with Handle (handled), one without Watermill's ack and nack channels,
// two allocations fewer: nothing waits on them there (the worker settles the message by
// the handler's result), and Ack and Nack work without them. entries is how many
// metadata entries the caller will set: a map for more than fit its first group is
// sized once instead of growing.
func NewMessage(uuid string, payload []byte, handled bool, entries int) *message.Message {
	var msg *message.Message
	if handled {
		msg = &message.Message{UUID: uuid, Metadata: message.Metadata{}, Payload: payload}
	} else {
		msg = message.NewMessage(uuid, payload)
	}
	if entries > mapGroup {
		msg.Metadata = make(message.Metadata, entries)
	}
	return msg
}

// mapGroup is how many entries a Go map holds in its first group, which the map
// NewMessage starts with makes room for on the first entry.
const mapGroup = 8

// Lane is one partition's scheduler. Its methods are safe for concurrent use.
type Lane struct {
	cfg    Config
	ctx    context.Context // the messages' parent context
	cancel context.CancelFunc

	mu   sync.Mutex
	cond *sync.Cond
	// The records held, in offset order, as a ring: ring[(head+i)%len(ring)] for
	// i < n. seq numbers entries so that workers can find theirs after the ring moves:
	// the entry at head has sequence number first.
	ring    []entry
	head, n int
	first   uint64
	// scan is the sequence number from which pick looks for a waiting record: no
	// record before it waits (those are in flight, nacked or done).
	scan       uint64
	next       int64                  // the offset after the last record pushed; -1 before any
	busy       map[string]int         // records of a key in flight or nacked
	nackedKeys map[string]int         // records of a key nacked, waiting for redelivery
	waitKeys   map[string]int         // records of a key in flight whose handler waits (transport.Waiter)
	lines      map[string][]*delivery // with KeyConcurrency above 1: a key's deliveries in flight, by offset
	slots      int                    // records in flight or nacked, less those waiting (transport.Waiter)
	waits      int                    // records in flight whose handler waits (transport.Waiter)
	nworkers   int                    // workers running: Concurrency, plus one per waiting record
	delivered  int                    // records in flight
	nackWaits  int                    // nacked records waiting for their time
	full       bool
	paused     bool
	stopping   bool
	end        int64
	progressed time.Time

	abandoned bool
	abandon   chan struct{} // closed when in-flight records are no longer waited for
	workers   sync.WaitGroup
	stopped   chan struct{} // closed when the first Stop has waited for the workers
}

// New starts a lane and its workers.
func New(cfg Config) *Lane {
	cfg.Concurrency = max(cfg.Concurrency, 1)
	cfg.Buffer = max(cfg.Buffer, cfg.Concurrency)
	cfg.KeyConcurrency = max(cfg.KeyConcurrency, 1)
	l := &Lane{cfg: cfg, ring: make([]entry, max(min(cfg.Buffer, 1024), 16)), next: -1, end: -1,
		busy: map[string]int{}, nackedKeys: map[string]int{}, waitKeys: map[string]int{}, lines: map[string][]*delivery{},
		abandon: make(chan struct{}), stopped: make(chan struct{}), progressed: time.Now()}
	l.cond = sync.NewCond(&l.mu)
	l.ctx, l.cancel = context.WithCancel(cfg.Context)
	context.AfterFunc(l.ctx, func() {
		l.mu.Lock()
		l.cond.Broadcast()
		l.mu.Unlock()
	})
	l.mu.Lock()
	for range cfg.Concurrency {
		l.startWorkerLocked()
	}
	l.mu.Unlock()
	return l
}

// Push adds records, in offset order and after every record pushed before. It never
// blocks, and reports whether the lane is now full: the transport should push it
// nothing more until OnRoom is called.
func (l *Lane) Push(recs ...Record) (full bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range recs {
		if l.n == len(l.ring) {
			l.grow()
		}
		l.ring[(l.head+l.n)%len(l.ring)] = entry{rec: r}
		l.n++
		l.next = r.Offset + 1
	}
	if len(recs) > 0 {
		l.cond.Signal() // the worker that takes one wakes the next (take)
	}
	l.full = l.full || l.n >= l.cfg.Buffer // cleared only by the settle that calls OnRoom
	return l.full
}

// Full reports whether the lane holds Buffer records or more and has not drained to
// half its Buffer since: what Push last reported, until OnRoom is called.
func (l *Lane) Full() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.full
}

func (l *Lane) grow() {
	bigger := make([]entry, 2*len(l.ring))
	for i := range l.n {
		bigger[i] = l.ring[(l.head+i)%len(l.ring)]
	}
	l.ring, l.head = bigger, 0
}

func (l *Lane) at(seq uint64) *entry {
	return &l.ring[(l.head+int(seq-l.first))%len(l.ring)]
}

func (l *Lane) startWorkerLocked() {
	l.nworkers++
	l.workers.Add(1)
	if l.cfg.Handle != nil {
		go l.serve()
		return
	}
	go l.work()
}

// work is one worker: take, deliver, wait for the outcome, until the lane stops or
// it is one more than the lane needs (a waiting record it was started for resumed).
func (l *Lane) work() {
	defer l.workers.Done()
	var rec Record // the record being delivered, given to Build: one per worker, not per delivery
	for {
		seq, msg, ok := l.take(&rec)
		if !ok {
			return
		}
		d := msg.Context().(*delivery) // before the handler sets a context of its own
		select {
		case l.cfg.Out <- msg:
		case <-l.ctx.Done():
			l.settle(seq, waiting, d)
			return
		}
		select {
		case <-msg.Acked():
			l.settle(seq, done, d)
		case <-msg.Nacked():
			l.settle(seq, nacked, d)
		case <-l.abandon:
			return
		}
		d.end()
	}
}

// serve is one worker with Config.Handle: take, run the handler, settle by its result,
// until the lane stops or it is one more than the lane needs. While the handler runs
// the worker does not count in workers, so that Stop, once it gives up on the records
// in flight, does not wait for a handler that does not return; a handler that returns
// after that settles nothing.
func (l *Lane) serve() {
	var rec Record
	for {
		seq, msg, ok := l.take(&rec)
		if !ok {
			l.workers.Done()
			return
		}
		d := msg.Context().(*delivery)
		if l.ctx.Err() != nil {
			l.settle(seq, waiting, d)
			l.workers.Done()
			return
		}
		l.workers.Done()
		err := l.cfg.Handle(msg)
		l.mu.Lock()
		if l.abandoned {
			l.mu.Unlock()
			return
		}
		l.workers.Add(1) // before giveUp, so before Stop waits for workers
		l.mu.Unlock()
		if err != nil {
			l.settle(seq, nacked, d)
		} else {
			l.settle(seq, done, d)
		}
		d.end()
	}
}

// take waits for a record that may go now, marks it in flight, copies it to rec and
// builds its message.
func (l *Lane) take(rec *Record) (uint64, *message.Message, bool) {
	l.mu.Lock()
	for {
		if l.stopping || l.ctx.Err() != nil {
			l.mu.Unlock()
			return 0, nil, false
		}
		if l.nworkers > l.cfg.Concurrency+l.waits {
			l.nworkers--
			l.cond.Signal() // a wake-up meant for a worker that takes goes on
			l.mu.Unlock()
			return 0, nil, false
		}
		if seq, e, ok := l.pick(); ok {
			// Wake one more worker to look for another record: Push and settle wake one
			// worker, not all (with a thousand idle workers, waking all of them for
			// each settle cost more than the handlers), and each worker that takes a
			// record passes the wake-up on, until one finds nothing to take.
			l.cond.Signal()
			ordered := e.rec.Keyed && !l.cfg.Unordered
			if e.state == nacked {
				l.nackWaits--
				if ordered {
					decrement(l.nackedKeys, e.rec.Key)
				}
			} else {
				l.slots++
				if ordered {
					l.busy[e.rec.Key]++
				}
			}
			e.state = inFlight
			l.delivered++
			*rec = e.rec
			d := &delivery{Context: l.ctx, lane: l, pos: transport.Position{Partition: l.cfg.Partition, Offset: rec.Offset, Time: rec.Time}}
			if ordered {
				d.key, d.keyed = rec.Key, true
				if l.cfg.KeyConcurrency > 1 {
					d.inLine = true
					l.joinLineLocked(d)
				}
			}
			l.mu.Unlock()
			msg := l.cfg.Build(rec)
			msg.SetContext(d)
			return seq, msg, true
		}
		l.cond.Wait()
	}
}

// pick finds the lowest-offset record that may be delivered now. The lock is held.
func (l *Lane) pick() (uint64, *entry, bool) {
	full := l.slots >= l.cfg.Concurrency
	if l.paused || full && l.nackWaits == 0 {
		return 0, nil, false
	}
	var now time.Time
	from := 0
	if l.nackWaits == 0 {
		from = int(l.scan - l.first) // nothing before it may go
	}
	seenWaiting := false
	for i := from; i < l.n; i++ {
		e := &l.ring[(l.head+i)%len(l.ring)]
		switch e.state {
		case waiting:
			if !seenWaiting {
				seenWaiting = true
				l.scan = max(l.scan, l.first+uint64(i))
			}
			if full {
				continue // a due redelivery may still go: it holds its slot
			}
			if e.rec.Keyed && !l.cfg.Unordered &&
				(l.busy[e.rec.Key] >= l.cfg.KeyConcurrency || l.nackedKeys[e.rec.Key] > 0 || l.waitKeys[e.rec.Key] > 0) {
				continue
			}
			return l.first + uint64(i), e, true
		case nacked:
			if now.IsZero() {
				now = time.Now()
			}
			if !e.due.After(now) {
				return l.first + uint64(i), e, true
			}
		}
	}
	if !seenWaiting {
		l.scan = max(l.scan, l.first+uint64(l.n))
	}
	return 0, nil, false
}

// settle records the outcome of the delivery d of entry seq: done (acked), nacked
// (deliver again after NackDelay) or waiting (never delivered).
func (l *Lane) settle(seq uint64, to state, d *delivery) {
	l.mu.Lock()
	e := l.at(seq)
	l.delivered--
	ordered := e.rec.Keyed && !l.cfg.Unordered
	if d.inLine {
		l.leaveLineLocked(d)
	}
	switch to {
	case waiting:
		e.state = waiting
		l.scan = min(l.scan, seq)
		l.slots--
		if ordered {
			decrement(l.busy, e.rec.Key)
		}
	case nacked:
		e.state = nacked
		e.due = time.Now().Add(l.cfg.NackDelay)
		l.nackWaits++
		if ordered {
			l.nackedKeys[e.rec.Key]++
		}
		time.AfterFunc(l.cfg.NackDelay, l.wake)
	case done:
		e.state = done
		l.slots--
		if ordered {
			decrement(l.busy, e.rec.Key)
		}
	}
	moved := false
	for l.n > 0 && l.ring[l.head].state == done {
		l.ring[l.head] = entry{}
		l.head = (l.head + 1) % len(l.ring)
		l.n--
		l.first++
		l.scan = max(l.scan, l.first)
		moved = true
	}
	var room bool
	if moved {
		l.progressed = time.Now()
		if l.full && l.n <= l.cfg.Buffer/2 {
			l.full, room = false, true
		}
	}
	next := l.watermarkLocked()
	if l.stopping || l.ctx.Err() != nil {
		l.cond.Broadcast() // Stop waits for the last settle
	} else {
		l.cond.Signal() // a slot or a key is free: one worker looks, and passes it on (take)
	}
	l.mu.Unlock()
	if moved && l.cfg.OnProgress != nil {
		l.cfg.OnProgress(next)
	}
	if room && l.cfg.OnRoom != nil {
		l.cfg.OnRoom()
	}
}

// wait gives up the slot of a record in flight while its handler waits, and starts a
// worker to deliver another record in its place (the waiting record's worker still
// waits for its outcome); resume takes the slot back (the lane may then have more
// than Concurrency records in flight until one settles), and the spare worker ends.
// With Concurrency 1 the whole partition is ordered, so a waiting record keeps its
// slot. Ordered, while d waits no more records of its key are handed out (as while
// one is nacked): the wait holds back its own key, and the slot goes to another.
func (l *Lane) wait(d *delivery) (resume func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cfg.Concurrency < 2 || l.stopping {
		return func() {}
	}
	l.slots--
	l.waits++
	if d.keyed {
		l.waitKeys[d.key]++
	}
	if l.nworkers < l.cfg.Concurrency+l.waits {
		l.startWorkerLocked()
	}
	l.cond.Broadcast()
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			l.slots++
			l.waits--
			if d.keyed {
				decrement(l.waitKeys, d.key)
			}
			l.cond.Broadcast()
			l.mu.Unlock()
		})
	}
}

// decrement takes one from m[k], dropping the key at 0.
func decrement(m map[string]int, k string) {
	if m[k] <= 1 {
		delete(m, k)
		return
	}
	m[k]--
}

// joinLineLocked adds d to its key's deliveries in flight, in offset order (a
// redelivery may come after later records of its key), and updates their turns.
func (l *Lane) joinLineLocked(d *delivery) {
	line := l.lines[d.key]
	i := len(line)
	for i > 0 && line[i-1].pos.Offset > d.pos.Offset {
		i--
	}
	line = append(line, nil)
	copy(line[i+1:], line[i:])
	line[i] = d
	l.lines[d.key] = line
	l.turnLocked(d.key)
}

// leaveLineLocked removes d, settled, from its key's deliveries in flight.
func (l *Lane) leaveLineLocked(d *delivery) {
	line := l.lines[d.key]
	for i, o := range line {
		if o == d {
			line = append(line[:i], line[i+1:]...)
			break
		}
	}
	if len(line) == 0 {
		delete(l.lines, d.key)
		return
	}
	l.lines[d.key] = line
	l.turnLocked(d.key)
}

// turnLocked makes Ready every delivery of key whose earlier deliveries in flight
// have all passed.
func (l *Lane) turnLocked(key string) {
	for _, d := range l.lines[key] {
		if !d.turn {
			d.turn = true
			if d.ready != nil {
				close(d.ready)
			}
		}
		if !d.passed {
			return
		}
	}
}

func (l *Lane) wake() {
	l.mu.Lock()
	l.cond.Broadcast()
	l.mu.Unlock()
}

// Watermark returns the offset the group may commit: the lowest offset not finished,
// or the offset after the last record pushed when all are finished. ok is false before
// any record was pushed.
func (l *Lane) Watermark() (next int64, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.watermarkLocked(), l.next >= 0
}

func (l *Lane) watermarkLocked() int64 {
	if l.n > 0 {
		return l.ring[l.head].rec.Offset
	}
	return l.next
}

// Pause stops handing out records; records in flight finish normally. Resume undoes
// it.
func (l *Lane) Pause() {
	l.mu.Lock()
	l.paused = true
	l.mu.Unlock()
}

// Resume undoes Pause. The time paused does not count as a time without progress:
// LastProgress restarts at Resume.
func (l *Lane) Resume() {
	l.mu.Lock()
	if l.paused {
		l.progressed = time.Now()
	}
	l.paused = false
	l.cond.Broadcast()
	l.mu.Unlock()
}

// SetStart records the offset of the first record the lane will be pushed, when the
// transport knows it before any record arrives: the watermark until then.
func (l *Lane) SetStart(next int64) {
	l.mu.Lock()
	if l.next < 0 && l.n == 0 {
		l.next = next
	}
	l.mu.Unlock()
}

// SetEnd records the partition's end offset, for Stats.
func (l *Lane) SetEnd(end int64) {
	l.mu.Lock()
	l.end = max(l.end, end)
	l.mu.Unlock()
}

// Stats reports the lane's state.
func (l *Lane) Stats() transport.PartitionStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	committed := l.watermarkLocked()
	end := l.end
	if end >= 0 && l.next > end {
		end = l.next
	}
	return transport.PartitionStats{
		Partition: l.cfg.Partition, Committed: committed, End: end,
		InFlight: l.delivered, Buffered: l.n - l.delivered, Paused: l.paused, LastProgress: l.progressed,
	}
}

// Stop ends the lane: nothing new is delivered, redelivery waits end, the messages'
// contexts end, and the records in flight may still be acked or nacked for drain.
// It returns once those have settled (or drain ran out) and every worker has
// returned, with the final watermark; ok is false when no record was ever pushed. A
// drain of 0 or less gives up on the records in flight at once (their partition was
// lost). Stop is idempotent; later calls return the same watermark.
func (l *Lane) Stop(drain time.Duration) (next int64, ok bool) {
	l.mu.Lock()
	first := !l.stopping
	l.stopping = true
	l.cond.Broadcast()
	l.mu.Unlock()
	if !first {
		<-l.stopped // the first call waits for the workers, once
		return l.Watermark()
	}
	l.cancel()
	if drain > 0 {
		timer := time.AfterFunc(drain, l.giveUp)
		l.mu.Lock()
		for l.delivered > 0 && !l.abandoned {
			l.cond.Wait()
		}
		l.mu.Unlock()
		timer.Stop()
	}
	l.giveUp()
	l.workers.Wait()
	close(l.stopped)
	return l.Watermark()
}

// giveUp stops waiting for the outcomes of records in flight.
func (l *Lane) giveUp() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.abandoned {
		l.abandoned = true
		close(l.abandon)
	}
	l.cond.Broadcast()
}

// delivery is the context of one delivered message: its lane's context with its
// position, which also ends once the message is acked or nacked, as Watermill's
// subscribers do. Its Done channel is made only when asked for.
type delivery struct {
	context.Context
	lane *Lane
	pos  transport.Position
	// key is the record's key when ordered by it (keyed); with KeyConcurrency above 1
	// (inLine), the delivery also has its transport.KeyOrder state, under the lane's
	// lock.
	key    string
	keyed  bool
	inLine bool
	turn   bool          // every earlier delivery of the key in flight has passed
	passed bool          // Pass was called
	ready  chan struct{} // closed at turn, made when asked for
	mu     sync.Mutex
	done   chan struct{}
	ended  bool
	stop   func() bool // unregisters the close of done from the lane's context
}

func (d *delivery) Value(key any) any {
	if transport.IsPositionKey(key) {
		return &d.pos
	}
	if transport.IsWaiterKey(key) {
		return d
	}
	if transport.IsKeyOrderKey(key) && d.inLine {
		return transport.KeyOrder(d)
	}
	return d.Context.Value(key)
}

// laneKey is what Key returns: a key of one lane.
type laneKey struct {
	lane *Lane
	key  string
}

// Key implements transport.KeyOrder.
func (d *delivery) Key() any { return laneKey{d.lane, d.key} }

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Ready implements transport.KeyOrder.
func (d *delivery) Ready() <-chan struct{} {
	d.lane.mu.Lock()
	defer d.lane.mu.Unlock()
	if d.turn {
		return closedChan
	}
	if d.ready == nil {
		d.ready = make(chan struct{})
	}
	return d.ready
}

// Pass implements transport.KeyOrder.
func (d *delivery) Pass() {
	l := d.lane
	l.mu.Lock()
	defer l.mu.Unlock()
	if d.passed {
		return
	}
	d.passed = true
	for _, o := range l.lines[d.key] {
		if o == d { // still in flight
			l.turnLocked(d.key)
			return
		}
	}
}

func (d *delivery) Done() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done == nil {
		d.done = make(chan struct{})
		if d.ended || d.Context.Err() != nil {
			d.ended = true // so that a later end does not close done again
			close(d.done)
		} else {
			d.stop = context.AfterFunc(d.Context, d.end)
		}
	}
	return d.done
}

func (d *delivery) Err() error {
	d.mu.Lock()
	ended := d.ended
	d.mu.Unlock()
	if err := d.Context.Err(); err != nil {
		return err
	}
	if ended {
		return context.Canceled
	}
	return nil
}

// Wait implements transport.Waiter.
func (d *delivery) Wait() (resume func()) { return d.lane.wait(d) }

// end ends the context: the message was acked or nacked, or its lane's context ended.
func (d *delivery) end() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ended {
		return
	}
	d.ended = true
	if d.done != nil {
		close(d.done)
		if d.stop != nil {
			d.stop()
		}
	}
}
