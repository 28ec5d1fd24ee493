package pubsub

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/transport"
)

// outgoingSend is one Publish, PublishAsync or PublishBatch value on the lean path: the
// transport.Outgoing, room for its headers and the bytes of its values, and what its
// settling needs, in one object, reused once settled (outgoingSends). The transport's
// record refers to the bytes in text until the message settles.
type outgoingSend struct {
	out     transport.Outgoing
	headers [outgoingHeaders]transport.Header
	// text holds the id and the publish time, then the key, the correlation id and the
	// WithMetadata values when they fit (else those go to one buffer of their own).
	text  [outgoingText]byte
	c     *Client
	ctx   context.Context
	topic string
	start time.Time   // the publish time; the event's Duration counts from it
	done  func(error) // PublishAsync's; nil for a PublishBatch's, which settles in batch
	batch *batchSends
	index int // the value's index in batch
}

// batchSends is what PublishBatch waits on: each value's error, by index.
type batchSends struct {
	errs []error
	wg   sync.WaitGroup
}

// settle records how the value at index i went.
func (b *batchSends) settle(i int, err error) {
	b.errs[i] = err
	b.wg.Done()
}

// outgoingHeaders is how many headers an outgoingSend holds without a slice of its
// own: pubsubkit's four and a correlation header or one entry of WithMetadata.
const outgoingHeaders = 5

// outgoingText is how many bytes of values an outgoingSend holds itself: the id (36)
// and the publish time (30 in RFC 3339 with nanoseconds), and 62 more for the key, a
// correlation id that is not the message's own and WithMetadata values.
const outgoingText = 128

// outgoing returns the transport as an OutgoingPublisher when a publish of t from ctx
// may take the lean path: the transport takes a transport.Outgoing, nothing asks for a
// Watermill message (observers.leanPublish) and t adds no CloudEvents attributes.
func outgoing[T any](ctx context.Context, c *Client, t Topic[T]) (transport.OutgoingPublisher, bool) {
	op, ok := c.tr.(transport.OutgoingPublisher)
	return op, ok && t.ceSource == nil && c.obs.leanPublish(ctx)
}

// publishOutgoing is PublishAsync on the lean path (see outgoing): it reports false,
// and does nothing, when the path is not open to this publish. How the message went
// goes to done, or, with done nil, to batch at index.
func publishOutgoing[T any](ctx context.Context, c *Client, t Topic[T], v T, done func(error), batch *batchSends, index int, opts []PublishOption) bool {
	op, ok := outgoing(ctx, c, t)
	if !ok {
		return false
	}
	s, err := newOutgoingSend(ctx, c, t, v, opts)
	if err != nil {
		if done == nil {
			batch.settle(index, err)
		} else {
			done(err)
		}
		return true
	}
	s.done, s.batch, s.index = done, batch, index
	c.pending.Add(1)
	op.PublishOutgoingAsync(ctx, t.name, &s.out, s)
	return true
}

// publishOutgoingSync is Publish on the lean path: it reports false, and does
// nothing, when the path is not open to this publish.
func publishOutgoingSync[T any](ctx context.Context, c *Client, t Topic[T], v T, opts []PublishOption) (bool, error) {
	op, ok := outgoing(ctx, c, t)
	if !ok {
		return false, nil
	}
	s, err := newOutgoingSend(ctx, c, t, v, opts)
	if err != nil {
		return true, err
	}
	err = op.PublishOutgoing(ctx, t.name, &s.out)
	s.report(err)
	s.release()
	if err != nil {
		if ctx.Err() != nil {
			return true, ctx.Err()
		}
		return true, fmt.Errorf("pubsub: publish to %q: %w", t.name, err)
	}
	return true, nil
}

// newOutgoingSend encodes v as newMessage would, into a transport.Outgoing with the
// same headers, and checks, as publish does, that the client publishes and ctx is
// not done. The id and the publish time are formatted once, into the send's text,
// and the record is written from those bytes.
func newOutgoingSend[T any](ctx context.Context, c *Client, t Topic[T], v T, opts []PublishOption) (*outgoingSend, error) {
	e, err := encode(ctx, c, t, v, opts)
	if err != nil {
		return nil, err
	}
	if !c.publishing() {
		return nil, fmt.Errorf("pubsub: publish to %q: %w", t.name, ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := outgoingSends.Get().(*outgoingSend)
	s.c, s.ctx, s.topic, s.start = c, ctx, t.name, e.at
	named := appendIDAndTime(s.text[:0], e.at)
	id, publishedAt := named[:36:36], named[36:len(named):len(named)]

	// The other values' bytes: in text after the id and time when they fit, else in
	// one buffer of their own.
	need := len(e.key) + len(e.correlationID)
	for _, val := range e.o.metadata {
		need += len(val)
	}
	buf := named[len(named):]
	if need > cap(buf) {
		buf = make([]byte, 0, need)
	}
	bytesOf := func(v string) []byte {
		start := len(buf)
		buf = append(buf, v...)
		return buf[start:len(buf):len(buf)]
	}
	correlationID := id // a new conversation is named after its first message
	if e.correlationID != "" {
		correlationID = bytesOf(e.correlationID)
	}
	s.out = transport.Outgoing{ID: id, Payload: e.payload, Time: e.at}
	if e.key != "" {
		s.out.Key = bytesOf(e.key)
	}
	th := t.headers
	if th == nil { // a Topic not made by NewTopic
		th = &topicHeaders{contentType: []byte(t.codec.ContentType()), typeName: []byte(t.typeName)}
	}
	h := s.headers[:0]
	if n := len(e.o.metadata) + 5; n > outgoingHeaders {
		h = make([]transport.Header, 0, n)
	}
	h = append(h,
		transport.Header{Key: metadata.ContentType, Value: th.contentType},
		transport.Header{Key: metadata.MessageType, Value: th.typeName},
		transport.Header{Key: metadata.PublishedAt, Value: publishedAt},
		transport.Header{Key: metadata.CorrelationID, Value: correlationID})
	// encode refused pubsubkit's own keys; taken: WithMetadata gave the correlation header
	taken := false
	for k, val := range e.o.metadata {
		if e.correlationHeader != "" && k == e.correlationHeader {
			taken = true
			if val == "" { // as newMessage: an empty value gives way to the id, under one key
				h = append(h, transport.Header{Key: k, Value: correlationID})
				continue
			}
		}
		h = append(h, transport.Header{Key: k, Value: bytesOf(val)})
	}
	if e.correlationHeader != "" && !taken {
		h = append(h, transport.Header{Key: e.correlationHeader, Value: correlationID})
	}
	s.out.Headers = h
	return s, nil
}

// report is settled for the lean path. Its event carries no Message, MessageID or
// CorrelationID: the lean path is taken only when the client's span events and
// metrics are its only observers (observers.leanPublish), and they read none of
// them. It reads the clock once, for the event's time and its Duration.
func (s *outgoingSend) report(err error) {
	now := time.Now()
	e := Event{Kind: EventPublished, Topic: s.topic, At: now, Duration: now.Sub(s.start)}
	if err != nil {
		e.Kind, e.Err = EventFailed, fmt.Errorf("publish: %w", err)
	}
	s.c.obs.report(s.ctx, e)
}

// Settle is publishAsync's callback for the lean path. The transport is done with
// s's bytes then, so s goes back to outgoingSends before done runs.
func (s *outgoingSend) Settle(err error) {
	s.report(err)
	c, topic, done, batch, index := s.c, s.topic, s.done, s.batch, s.index
	s.release()
	c.pending.Add(-1)
	if err != nil {
		err = fmt.Errorf("pubsub: publish to %q: %w", topic, err)
	}
	if done == nil {
		batch.settle(index, err)
		return
	}
	done(err)
}

// outgoingSends holds the outgoingSends settled, for newOutgoingSend to reuse: a
// send's transport.Outgoing and the bytes it refers to are the transport's until the
// message settles (transport.OutgoingPublisher), and nobody's after.
var outgoingSends = sync.Pool{New: func() any { return new(outgoingSend) }}

// release gives s back to outgoingSends, keeping none of the caller's references
// (the payload, ctx, done, the batch) alive. text and headers are left as they are
// (every use writes them before reading them): their values are the send's own text,
// the topic's bytes, or a buffer of long values that the next use replaces.
func (s *outgoingSend) release() {
	s.out = transport.Outgoing{}
	s.ctx, s.done, s.batch = nil, nil, nil
	outgoingSends.Put(s)
}
