package middleware

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Detach gives the stages inside it, and the handler, a context that keeps the
// message's values but has the lifetime of life instead of the message's own:
// transports end a message's context when its subscription stops or its partition is
// revoked, and a handler should still be able to finish its work (its message is then
// redelivered elsewhere, or acked within the drain time). The stages outside it still
// see the message's context, whose end interrupts retry waits. The pubsub client
// passes a context that ends when its drain time runs out or it closes.
func Detach(life context.Context) message.HandlerMiddleware {
	stage := &detachStage{life: life}
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			parent := msg.Context()
			msg.SetContext(stage.context(parent))
			produced, err := h(msg)
			msg.SetContext(parent)
			return produced, err
		}
	}
}

// detachStage is one Detach stage.
type detachStage struct {
	life context.Context
}

// context returns the detached context of parent: the one a CorrelationID stage right
// outside made room for in its own context (set the first time, reused by the
// attempts after it), or else a new one.
func (s *detachStage) context(parent context.Context) context.Context {
	if c, ok := parent.(*correlationContext); ok && (c.by == nil || c.by == s) {
		if c.by == nil {
			c.handler, c.by = detached{Context: parent, life: s.life}, s
		}
		return &c.handler
	}
	return detached{Context: parent, life: s.life}
}

// detached has the values of its Context and the lifetime of life.
type detached struct {
	context.Context
	life context.Context
}

func (d detached) Deadline() (time.Time, bool) { return d.life.Deadline() }
func (d detached) Done() <-chan struct{}       { return d.life.Done() }
func (d detached) Err() error                  { return d.life.Err() }

// AfterFunc lets context.WithCancel and context.AfterFunc on a detached context
// register with its lifetime instead of starting a goroutine to watch it.
func (d detached) AfterFunc(f func()) func() bool { return context.AfterFunc(d.life, f) }

// deliveryKey is the context key under which a detached context answers with the
// message's own context.
type deliveryKey struct{}

// Value answers deliveryKey with the message's own context.
func (d detached) Value(key any) any {
	if _, ok := key.(deliveryKey); ok {
		return d.Context
	}
	return d.Context.Value(key)
}

// DeliveryOf returns the message's own context behind a context Detach made (or one
// derived from it): it ends when the message's delivery ends (its partition revoked,
// its subscription stopped). Any other context is returned as it is.
func DeliveryOf(ctx context.Context) context.Context {
	if d, ok := ctx.Value(deliveryKey{}).(context.Context); ok {
		return d
	}
	return ctx
}
