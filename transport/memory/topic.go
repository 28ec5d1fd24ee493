package memory

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/internal/lane"
)

// topic is one log and the groups that read it. Every field below mu is guarded by it.
type topic struct {
	t    *Transport
	name string

	mu      sync.Mutex
	first   int64     // offset of log[0]
	log     []*record // retained messages, oldest first
	bytes   int64     // sum of log[i].size
	groups  map[string]*group
	anon    map[*group]struct{}        // subscriptions without a group
	feeders map[chan struct{}]struct{} // woken when a message is appended
}

// group is one consumer group's position and members. The first member consumes;
// the others stand by.
type group struct {
	name    string
	next    int64 // the lowest offset not finished: the group's committed position
	members []*member
	active  *member // the member consuming, until its lane has stopped
}

// member is one subscription.
type member struct {
	ctx  context.Context
	opts transport.SubscribeOptions
	// handle, when set (SubscribeHandler), is run by the lane's workers; out then
	// delivers nothing.
	handle func(*message.Message) error
	out    chan *message.Message
	done   chan struct{}

	mu     sync.Mutex
	lane   *lane.Lane // while this member consumes
	paused bool
}

func newTopic(t *Transport, name string) *topic {
	return &topic{t: t, name: name, groups: map[string]*group{}, anon: map[*group]struct{}{},
		feeders: map[chan struct{}]struct{}{}}
}

func (tp *topic) end() int64 { return tp.first + int64(len(tp.log)) }

// append adds r to the log, making room by dropping old messages that may go, and
// otherwise waiting for room.
func (tp *topic) append(ctx context.Context, r *record) error {
	cfg := tp.t.cfg
	limit := tp.limit(r)
	if r.size > limit {
		return fmt.Errorf("memory: %w: message %s of %d bytes on topic %q exceeds max_retained_bytes %d (%w)",
			transport.ErrMessageTooLarge, r.uuid, r.size, tp.name, limit, ErrTopicFull)
	}
	var (
		room     <-chan struct{} // set once append has to wait
		deadline <-chan time.Time
	)
	for {
		if room != nil {
			room = tp.t.roomChanged() // before the check, so that no room made after it is missed
		}
		tp.mu.Lock()
		if tp.makeRoomLocked(r.size, limit) {
			if tp.t.ctx.Err() != nil {
				tp.t.bytes.Add(-r.size)
				tp.mu.Unlock()
				return fmt.Errorf("memory: %w", transport.ErrClosed)
			}
			r.offset = tp.end()
			tp.log = append(tp.log, r)
			tp.bytes += r.size
			for wake := range tp.feeders {
				select {
				case wake <- struct{}{}:
				default:
				}
			}
			tp.mu.Unlock()
			if room != nil {
				tp.t.stopWaiting()
			}
			return nil
		}
		tp.mu.Unlock()
		if room == nil {
			room = tp.t.startWaiting()
			timer := time.NewTimer(max(cfg.FullTimeout, 0))
			defer timer.Stop()
			deadline = timer.C
			continue
		}
		var err error
		select {
		case <-room:
			continue
		case <-ctx.Done():
			err = ctx.Err()
		case <-tp.t.ctx.Done():
			err = fmt.Errorf("memory: %w", transport.ErrClosed)
		case <-deadline:
			tp.mu.Lock()
			n, b := len(tp.log), tp.bytes
			tp.mu.Unlock()
			err = fmt.Errorf("%w: topic %q holds %d messages, %d bytes (limits %d, %d; %d bytes in all topics, limit %d) that a consumer group has not consumed yet",
				ErrTopicFull, tp.name, n, b, cfg.MaxRetained, cfg.MaxRetainedBytes, tp.t.bytes.Load(), cfg.MaxBytes)
		}
		tp.t.stopWaiting()
		return err
	}
}

// limit is the largest message the topic takes: MaxRetainedBytes, and for a dead
// letter transport.DeadLetterHeadroom more, so that every message a subscription
// accepted can be dead-lettered with the keys the client adds.
func (tp *topic) limit(r *record) int64 {
	if r.has(metadata.DeadLetterReason) {
		return tp.t.cfg.MaxRetainedBytes + transport.DeadLetterHeadroom
	}
	return tp.t.cfg.MaxRetainedBytes
}

// makeRoomLocked makes room for size more bytes within the topic's and the
// transport's bounds, dropping messages that may go, and reserves the bytes in the
// transport's count. A message larger than MaxRetainedBytes (a dead letter within
// limit) fits only a topic that holds nothing else. It reports false when there is
// no room; the lock is held throughout, but released while other topics are trimmed.
func (tp *topic) makeRoomLocked(size, limit int64) bool {
	cfg := tp.t.cfg
	fits := func() bool {
		return len(tp.log) < cfg.MaxRetained &&
			(tp.bytes+size <= cfg.MaxRetainedBytes || len(tp.log) == 0 && size <= limit)
	}
	for !fits() && tp.trimLocked() {
	}
	if !fits() {
		return false
	}
	if tp.reserveLocked(size) {
		return true
	}
	for tp.trimLocked() {
		if tp.reserveLocked(size) {
			return true
		}
	}
	tp.mu.Unlock()
	tp.t.trimOthers(tp, size)
	tp.mu.Lock()
	return fits() && tp.reserveLocked(size)
}

// reserveLocked takes size bytes of the transport-wide bound, if they are free.
func (tp *topic) reserveLocked(size int64) bool {
	if tp.t.bytes.Add(size) <= tp.t.cfg.MaxBytes {
		return true
	}
	tp.t.bytes.Add(-size)
	return false
}

// trimLocked drops the oldest message if it may go: every group, and every
// subscription without a group, has finished it, or no one consumes the topic at all
// (retention, as on Kafka).
func (tp *topic) trimLocked() bool {
	if len(tp.log) == 0 {
		return false
	}
	for _, g := range tp.groups {
		if g.next <= tp.first {
			return false
		}
	}
	for g := range tp.anon {
		if g.next <= tp.first {
			return false
		}
	}
	size := tp.log[0].size
	tp.bytes -= size
	tp.t.bytes.Add(-size)
	tp.log[0] = nil
	tp.log = tp.log[1:]
	tp.first++
	tp.t.madeRoom()
	return true
}

// trimFor drops messages that may go until enough reports true or none may.
func (tp *topic) trimFor(enough func() bool) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	for !enough() && tp.trimLocked() {
	}
}

// subscribe adds a member to group (a new anonymous group when the name is ""); the
// first member of a group consumes, the others stand by.
func (tp *topic) subscribe(ctx context.Context, opts transport.SubscribeOptions, handle func(*message.Message) error) transport.Subscription {
	if opts.Drain == 0 {
		opts.Drain = tp.t.cfg.Drain
	}
	m := &member{ctx: ctx, opts: opts, handle: handle, out: make(chan *message.Message), done: make(chan struct{})}

	tp.mu.Lock()
	var g *group
	if opts.Group == "" {
		g = &group{next: tp.first}
		if opts.FromEnd {
			g.next = tp.end()
		}
		tp.anon[g] = struct{}{}
	} else if g = tp.groups[opts.Group]; g == nil {
		g = &group{name: opts.Group, next: tp.first}
		tp.groups[opts.Group] = g
	}
	g.members = append(g.members, m)
	if g.active == nil {
		tp.activateLocked(g, m)
	}
	tp.mu.Unlock()

	tp.t.wg.Add(1)
	go tp.watch(g, m)
	return m
}

// activateLocked makes m consume g from its position.
func (tp *topic) activateLocked(g *group, m *member) {
	room := make(chan struct{}, 1)
	l := lane.New(lane.Config{
		Concurrency:    m.opts.Concurrency,
		Unordered:      m.opts.Unordered,
		KeyConcurrency: m.opts.KeyConcurrency,
		Buffer:         tp.t.cfg.Buffer,
		NackDelay:      tp.t.cfg.NackDelay,
		Handle:         m.handle,
		Out:            m.out,
		Context:        m.ctx,
		Build:          func(r *lane.Record) *message.Message { return r.Data.(*record).message(m.handle != nil) },
		OnProgress:     func(next int64) { tp.progress(g, next) },
		OnRoom: func() {
			select {
			case room <- struct{}{}:
			default:
			}
		},
	})
	m.mu.Lock()
	m.lane = l
	if m.paused {
		l.Pause()
	}
	m.mu.Unlock()
	g.active = m
	wake := make(chan struct{}, 1)
	tp.feeders[wake] = struct{}{}
	tp.t.wg.Add(1)
	go tp.feed(g, m, l, room, wake)
}

// progress records g's new position once a message is finished.
func (tp *topic) progress(g *group, next int64) {
	tp.mu.Lock()
	if next > g.next {
		g.next = next
	}
	tp.mu.Unlock()
	tp.t.madeRoom()
}

// feed pushes the log into m's lane from g's position, while the lane has room,
// until m stops consuming.
func (tp *topic) feed(g *group, m *member, l *lane.Lane, room, wake chan struct{}) {
	defer tp.t.wg.Done()
	defer func() {
		tp.mu.Lock()
		delete(tp.feeders, wake)
		tp.mu.Unlock()
	}()
	tp.mu.Lock()
	pos := g.next
	tp.mu.Unlock()
	l.SetStart(pos)
	batch := make([]lane.Record, 0, 64)
	for {
		tp.mu.Lock()
		pos = max(pos, tp.first)
		end := tp.end()
		batch = batch[:0]
		for ; pos < end && len(batch) < cap(batch); pos++ {
			r := tp.log[pos-tp.first]
			batch = append(batch, lane.Record{Offset: r.offset, Time: r.time, Key: r.key, Keyed: r.key != "", Data: r})
		}
		tp.mu.Unlock()
		l.SetEnd(end)
		wait := wake
		if len(batch) > 0 {
			if !l.Push(batch...) {
				continue
			}
			wait = room
		}
		select {
		case <-wait:
		case <-m.ctx.Done():
			return
		case <-tp.t.ctx.Done():
			return
		}
	}
}

// watch removes m once its subscription ends. When m was consuming, its lane stops,
// letting the messages in flight finish within the drain, and then the next member of
// the group takes over from the group's position. m's channel closes last.
func (tp *topic) watch(g *group, m *member) {
	defer tp.t.wg.Done()
	select {
	case <-m.ctx.Done():
	case <-tp.t.ctx.Done():
	}
	tp.mu.Lock()
	g.members = slices.DeleteFunc(g.members, func(x *member) bool { return x == m })
	tp.mu.Unlock()

	m.mu.Lock()
	l := m.lane
	m.mu.Unlock()
	if l != nil {
		drain := m.opts.Drain
		if tp.t.ctx.Err() != nil {
			drain = min(drain, closeDrain)
		}
		l.Stop(drain)
	}
	close(m.out)

	tp.mu.Lock()
	if g.active == m {
		g.active = nil
		if len(g.members) > 0 && tp.t.ctx.Err() == nil {
			tp.activateLocked(g, g.members[0])
		}
	}
	if g.name == "" {
		delete(tp.anon, g)
	}
	tp.mu.Unlock()
	tp.t.madeRoom()
	close(m.done)
}

// closeDrain bounds how long Close waits for messages in flight.
const closeDrain = 5 * time.Second

func (tp *topic) deleteGroup(name string) error {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	g, ok := tp.groups[name]
	if !ok {
		return nil
	}
	if len(g.members) > 0 {
		return fmt.Errorf("memory: %w: group %q on topic %q still has members", transport.ErrInvalidOption, name, tp.name)
	}
	delete(tp.groups, name)
	tp.t.madeRoom()
	return nil
}

// The member is the transport.Subscription.

func (m *member) Messages() <-chan *message.Message { return m.out }
func (m *member) Done() <-chan struct{}             { return m.done }

func (m *member) Pause() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.paused = true
	if m.lane != nil {
		m.lane.Pause()
	}
}

func (m *member) Resume() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.paused = false
	if m.lane != nil {
		m.lane.Resume()
	}
}

func (m *member) Stats() []transport.PartitionStats {
	m.mu.Lock()
	l := m.lane
	m.mu.Unlock()
	if l == nil {
		return nil // standing by: no partition
	}
	return []transport.PartitionStats{l.Stats()}
}
