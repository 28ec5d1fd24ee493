package memory

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/transport"
)

// record is one message in a topic's log, held as an immutable copy.
type record struct {
	offset   int64
	uuid     string
	metadata message.Metadata
	payload  []byte
	size     int64
}

func newRecord(msg *message.Message) *record {
	r := &record{
		uuid:     msg.UUID,
		metadata: make(message.Metadata, len(msg.Metadata)),
		payload:  append([]byte(nil), msg.Payload...),
	}
	r.size = int64(len(r.payload) + len(r.uuid))
	for k, v := range msg.Metadata {
		r.metadata[k] = v
		r.size += int64(len(k) + len(v))
	}
	return r
}

// message returns a fresh Watermill message for one delivery, so that a handler that
// changes its copy changes nothing for redeliveries or other groups.
func (r *record) message() *message.Message {
	msg := message.NewMessage(r.uuid, append([]byte(nil), r.payload...))
	for k, v := range r.metadata {
		msg.Metadata[k] = v
	}
	return msg
}

// topic is one log and the groups that read it. Every field below mu is guarded by it.
type topic struct {
	t    *Transport
	name string

	mu      sync.Mutex
	first   int64     // offset of log[0]
	log     []*record // retained messages, oldest first
	bytes   int64     // sum of log[i].size
	groups  map[string]*group
	anon    map[*group]struct{} // subscriptions without a group
	changed chan struct{}       // closed and replaced whenever anything changes
}

// group is one consumer group's position and members.
type group struct {
	name    string
	next    int64 // offset of the next message to deliver: everything before is committed
	members []*member
	rr      int  // round-robin index into members
	running bool // a deliver goroutine owns this group
}

// member is one subscription: the channel it reads and the signal that it left.
type member struct {
	ctx  context.Context
	out  chan *message.Message
	done chan struct{}
	mu   sync.Mutex // held while sending on out, so out is never closed mid-send
	gone bool
}

func newTopic(t *Transport, name string) *topic {
	return &topic{t: t, name: name, groups: map[string]*group{}, anon: map[*group]struct{}{}, changed: make(chan struct{})}
}

// notifyLocked wakes every goroutine waiting on a change of this topic.
func (tp *topic) notifyLocked() {
	close(tp.changed)
	tp.changed = make(chan struct{})
}

func (tp *topic) end() int64 { return tp.first + int64(len(tp.log)) }

// append adds r to the log, making room by dropping the oldest message when every group
// has consumed it, and otherwise waiting for room.
func (tp *topic) append(ctx context.Context, r *record) error {
	cfg := tp.t.cfg
	if r.size > cfg.MaxRetainedBytes {
		return fmt.Errorf("%w: message %s of %d bytes on topic %q exceeds max_retained_bytes %d",
			ErrTopicFull, r.uuid, r.size, tp.name, cfg.MaxRetainedBytes)
	}
	var deadline <-chan time.Time
	tp.mu.Lock()
	for len(tp.log) >= cfg.MaxRetained || tp.bytes+r.size > cfg.MaxRetainedBytes {
		if tp.trimLocked() {
			continue
		}
		changed := tp.changed
		tp.mu.Unlock()
		if deadline == nil {
			timer := time.NewTimer(max(cfg.FullTimeout, 0))
			defer timer.Stop()
			deadline = timer.C
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-tp.t.closing():
			return fmt.Errorf("memory: %w", transport.ErrClosed)
		case <-deadline:
			tp.mu.Lock()
			n, b := len(tp.log), tp.bytes
			tp.mu.Unlock()
			return fmt.Errorf("%w: topic %q holds %d messages, %d bytes (limits %d, %d) that a consumer group has not consumed yet, or that no group has subscribed to",
				ErrTopicFull, tp.name, n, b, cfg.MaxRetained, cfg.MaxRetainedBytes)
		}
		tp.mu.Lock()
	}
	if tp.t.ctx.Err() != nil {
		tp.mu.Unlock()
		return fmt.Errorf("memory: %w", transport.ErrClosed)
	}
	r.offset = tp.end()
	tp.log = append(tp.log, r)
	tp.bytes += r.size
	tp.notifyLocked()
	tp.mu.Unlock()
	return nil
}

// trimLocked drops the oldest message if every group, and every subscription without a
// group, has consumed it. With no group at all nothing is dropped: the messages wait for
// the first group.
func (tp *topic) trimLocked() bool {
	if len(tp.log) == 0 || (len(tp.groups) == 0 && len(tp.anon) == 0) {
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
	tp.bytes -= tp.log[0].size
	tp.log[0] = nil
	tp.log = tp.log[1:]
	tp.first++
	return true
}

// subscribe adds a member to group (a new anonymous group when name is "") and starts
// the group's delivery if it was idle.
func (tp *topic) subscribe(ctx context.Context, name string) <-chan *message.Message {
	m := &member{ctx: ctx, out: make(chan *message.Message), done: make(chan struct{})}

	tp.mu.Lock()
	var g *group
	if name == "" {
		g = &group{next: tp.first}
		tp.anon[g] = struct{}{}
	} else if g = tp.groups[name]; g == nil {
		g = &group{name: name, next: tp.first}
		tp.groups[name] = g
	}
	g.members = append(g.members, m)
	if !g.running {
		g.running = true
		tp.t.wg.Add(1)
		go tp.deliver(g)
	}
	tp.t.wg.Add(1)
	go tp.watch(g, m)
	tp.notifyLocked()
	tp.mu.Unlock()
	return m.out
}

// watch removes m from g once its subscription ends, then closes its channel.
func (tp *topic) watch(g *group, m *member) {
	defer tp.t.wg.Done()
	select {
	case <-m.ctx.Done():
	case <-tp.t.closing():
	}
	close(m.done)
	m.mu.Lock()
	m.gone = true
	close(m.out)
	m.mu.Unlock()

	tp.mu.Lock()
	g.members = slices.DeleteFunc(g.members, func(x *member) bool { return x == m })
	if g.name == "" && len(g.members) == 0 {
		delete(tp.anon, g)
	}
	tp.notifyLocked()
	tp.mu.Unlock()
}

func (tp *topic) deleteGroup(name string) error {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	g, ok := tp.groups[name]
	if !ok {
		return nil
	}
	if len(g.members) > 0 || g.running {
		return fmt.Errorf("memory: %w: group %q on topic %q still has members", transport.ErrInvalidOption, name, tp.name)
	}
	delete(tp.groups, name)
	tp.notifyLocked()
	return nil
}

// deliver feeds g's members one message at a time, in log order, until g has no
// members left or the transport closes. A nacked message is delivered again after
// NackDelay; an acked one commits the group's position.
func (tp *topic) deliver(g *group) {
	defer tp.t.wg.Done()
	closing := tp.t.closing()
	for {
		r, m, ok := tp.next(g)
		if !ok {
			return
		}
		msg := r.message()
		ctx, cancel := context.WithCancel(m.ctx)
		stop := context.AfterFunc(tp.t.ctx, cancel)
		msg.SetContext(transport.WithPosition(ctx, transport.Position{Offset: r.offset}))

		if !m.send(msg) {
			stop()
			cancel()
			continue // the member left before taking it: deliver to another
		}
		nacked := false
		select {
		case <-msg.Acked():
			tp.mu.Lock()
			if g.next == r.offset {
				g.next++
			}
			tp.notifyLocked()
			tp.mu.Unlock()
		case <-msg.Nacked():
			nacked = true
		case <-closing:
		}
		stop()
		cancel()
		if nacked && !tp.pause(tp.t.cfg.NackDelay) {
			return
		}
	}
}

// pause waits d, or reports false if the transport closes first.
func (tp *topic) pause(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-tp.t.closing():
		return false
	}
}

// next waits for the message at g's position and a member to take it. It returns false
// when g has no members left (marking it idle) or the transport is closing.
func (tp *topic) next(g *group) (*record, *member, bool) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	for {
		if tp.t.ctx.Err() != nil {
			g.running = false
			return nil, nil, false
		}
		if len(g.members) == 0 {
			g.running = false
			return nil, nil, false
		}
		g.next = max(g.next, tp.first)
		if g.next < tp.end() {
			m := g.members[g.rr%len(g.members)]
			g.rr++
			return tp.log[g.next-tp.first], m, true
		}
		changed := tp.changed
		tp.mu.Unlock()
		select {
		case <-changed:
		case <-tp.t.closing():
		}
		tp.mu.Lock()
	}
}

// send hands msg to the member, or reports false if the member left first.
func (m *member) send(msg *message.Message) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gone {
		return false
	}
	select {
	case m.out <- msg:
		return true
	case <-m.done:
		return false
	}
}
