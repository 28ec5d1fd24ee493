package middleware

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/pubsubkit/pubsub/metadata"
)

type correlationKey struct{}

// ContextWithCorrelationID returns a context carrying the correlation id id.
func ContextWithCorrelationID(ctx context.Context, id string) context.Context {
	return &correlationContext{Context: ctx, id: id}
}

// correlationContext carries a correlation id in one allocation (context.WithValue
// would need a second one to box the string).
type correlationContext struct {
	context.Context
	id string
}

func (c *correlationContext) Value(key any) any {
	if key == (correlationKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// CorrelationIDFromContext returns the correlation id in ctx, or "".
func CorrelationIDFromContext(ctx context.Context) string {
	if c, ok := ctx.Value(correlationKey{}).(*correlationContext); ok {
		return c.id
	}
	return ""
}

// CorrelationID puts the message's correlation id (metadata.CorrelationID) into its
// context, generating one when a producer outside pubsubkit sent none, so that
// everything the handler publishes continues the same conversation. Messages the
// handler returns (on a plain Watermill router) get the id too.
func CorrelationID(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		id := msg.Metadata.Get(metadata.CorrelationID)
		if id == "" {
			id = uuid.NewString()
			msg.Metadata.Set(metadata.CorrelationID, id)
		}
		msg.SetContext(ContextWithCorrelationID(msg.Context(), id))
		produced, err := h(msg)
		for _, p := range produced {
			if p.Metadata.Get(metadata.CorrelationID) == "" {
				p.Metadata.Set(metadata.CorrelationID, id)
			}
		}
		return produced, err
	}
}
