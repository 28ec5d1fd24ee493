package pubsub

import (
	"context"
	"fmt"
	"time"

	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/transport"
)

// outgoingSend is one Publish or PublishAsync on the lean path: the transport.Outgoing, room for
// its headers and what its settling needs, in one allocation.
type outgoingSend struct {
	out     transport.Outgoing
	headers [outgoingHeaders]transport.Header
	c       *Client
	ctx     context.Context
	topic   string
	start   time.Time
	done    func(error) // PublishAsync's
}

// outgoingHeaders is how many headers an outgoingSend holds without a slice of its
// own: pubsubkit's four, a correlation header and three entries of WithMetadata.
const outgoingHeaders = 8

// outgoing returns the transport as an OutgoingPublisher when a publish of t from ctx
// may take the lean path: the transport takes a transport.Outgoing, nothing asks for a
// Watermill message (observers.leanPublish) and t adds no CloudEvents attributes.
func outgoing[T any](ctx context.Context, c *Client, t Topic[T]) (transport.OutgoingPublisher, bool) {
	op, ok := c.tr.(transport.OutgoingPublisher)
	return op, ok && t.ceSource == nil && c.obs.leanPublish(ctx)
}

// publishOutgoing is PublishAsync on the lean path (see outgoing): it reports false,
// and does nothing, when the path is not open to this publish.
func publishOutgoing[T any](ctx context.Context, c *Client, t Topic[T], v T, done func(error), opts []PublishOption) bool {
	op, ok := outgoing(ctx, c, t)
	if !ok {
		return false
	}
	s, err := newOutgoingSend(ctx, c, t, v, opts)
	if err != nil {
		done(err)
		return true
	}
	s.done = done
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
// not done.
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
	s := &outgoingSend{c: c, ctx: ctx, topic: t.name}
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
	taken := e.o.metadata[e.correlationHeader] != ""
	for k, val := range e.o.metadata { // encode refused pubsubkit's own keys
		h = append(h, transport.Header{Key: k, Value: val})
	}
	if e.correlationHeader != "" && !taken {
		h = append(h, transport.Header{Key: e.correlationHeader, Value: e.correlationID})
	}
	s.out.Headers = h
	s.start = time.Now()
	return s, nil
}

// report is settled for the lean path: the event carries the id and the correlation
// id instead of a message.
func (s *outgoingSend) report(err error) {
	e := Event{Kind: EventPublished, Topic: s.topic, MessageID: s.out.ID,
		CorrelationID: s.out.Headers[3].Value, Duration: time.Since(s.start)}
	if err != nil {
		e.Kind, e.Err = EventFailed, fmt.Errorf("publish: %w", err)
	}
	s.c.obs.report(s.ctx, e)
}

// Settle is publishAsync's callback for the lean path.
func (s *outgoingSend) Settle(err error) {
	s.report(err)
	s.c.pending.Add(-1)
	if err != nil {
		err = fmt.Errorf("pubsub: publish to %q: %w", s.topic, err)
	}
	s.done(err)
}
