package pubsub

import (
	"context"
	"fmt"
	"time"

	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/transport"
)

// outgoingSend is one PublishAsync on the lean path: the transport.Outgoing, room for
// its headers and what its settling needs, in one allocation.
type outgoingSend struct {
	out     transport.Outgoing
	headers [outgoingHeaders]transport.Header
	c       *Client
	ctx     context.Context
	topic   string
	start   time.Time
	done    func(error)
}

// outgoingHeaders is how many headers an outgoingSend holds without a slice of its
// own: pubsubkit's four, a correlation header and three entries of WithMetadata.
const outgoingHeaders = 8

// publishOutgoing is PublishAsync on a transport that takes a transport.Outgoing, when
// nothing asks for a Watermill message (observers.leanPublish): it reports false, and
// does nothing, otherwise. The message is the one newMessage would make, with the
// same headers; a topic with CloudEvents attributes takes the Watermill path.
func publishOutgoing[T any](ctx context.Context, c *Client, t Topic[T], v T, done func(error), opts []PublishOption) bool {
	op, ok := c.tr.(transport.OutgoingPublisher)
	if !ok || t.ceSource != nil || !c.obs.leanPublish(ctx) {
		return false
	}
	e, err := encode(ctx, c, t, v, opts)
	if err != nil {
		done(err)
		return true
	}
	if !c.publishing() {
		done(fmt.Errorf("pubsub: publish to %q: %w", t.name, ErrClosed))
		return true
	}
	if err := ctx.Err(); err != nil {
		done(err)
		return true
	}
	s := &outgoingSend{c: c, ctx: ctx, topic: t.name, done: done}
	s.out = transport.Outgoing{ID: e.id, Key: e.key, Payload: e.payload}
	h := s.headers[:0]
	if n := len(e.o.metadata) + 5; n > outgoingHeaders {
		h = make([]transport.Header, 0, n)
	}
	h = append(h,
		transport.Header{Key: metadata.ContentType, Value: t.codec.ContentType()},
		transport.Header{Key: metadata.MessageType, Value: t.typeName},
		transport.Header{Key: metadata.PublishedAt, Value: e.publishedAt},
		transport.Header{Key: metadata.CorrelationID, Value: e.correlationID})
	_, taken := e.o.metadata[e.correlationHeader]
	for k, val := range e.o.metadata {
		h = append(h, transport.Header{Key: k, Value: val})
	}
	if e.correlationHeader != "" && !taken {
		h = append(h, transport.Header{Key: e.correlationHeader, Value: e.correlationID})
	}
	s.out.Headers = h
	s.start = time.Now()
	c.pending.Add(1)
	op.PublishOutgoingAsync(ctx, t.name, &s.out, s)
	return true
}

// Settle is settled and publishAsync's callback for the lean path: the event carries
// the id and the correlation id instead of a message.
func (s *outgoingSend) Settle(err error) {
	e := Event{Kind: EventPublished, Topic: s.topic, MessageID: s.out.ID,
		CorrelationID: s.out.Headers[3].Value, Duration: time.Since(s.start)}
	if err != nil {
		e.Kind, e.Err = EventFailed, fmt.Errorf("publish: %w", err)
	}
	s.c.obs.report(s.ctx, e)
	s.c.pending.Add(-1)
	if err != nil {
		err = fmt.Errorf("pubsub: publish to %q: %w", s.topic, err)
	}
	s.done(err)
}
