package middleware

import (
	"context"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/transport"
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

// CorrelationID puts the message's correlation id into its context, so that
// everything the handler publishes continues the same conversation. Messages the
// handler returns (on a plain Watermill router) get the id too.
//
// A message from a producer outside pubsubkit has no metadata.CorrelationID; its id
// is then the first of these it carries: a correlation_id, x-correlation-id,
// correlation-id or ce_correlationid header, its CloudEvents ce_id, or its message id
// (for a foreign Kafka record "topic-partition-offset"), or, for a message without
// an id, "topic-partition-offset" from its transport.Position. Every group and every
// redelivery of one record so agree on its correlation id.
func CorrelationID(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		id := msg.Metadata.Get(metadata.CorrelationID)
		if id == "" {
			id = foreignCorrelationID(msg)
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

// foreignCorrelationHeaders are the headers other clients name a conversation with,
// in the order CorrelationID reads them.
var foreignCorrelationHeaders = [...]string{"correlation_id", "x-correlation-id", "correlation-id",
	metadata.CloudEventsPrefix + "correlationid", metadata.CloudEventsID}

// foreignCorrelationID is the correlation id of a message that came without ours:
// one a foreign producer set, or else the message's own identity.
func foreignCorrelationID(msg *message.Message) string {
	for _, k := range foreignCorrelationHeaders {
		if v := msg.Metadata.Get(k); v != "" {
			return v
		}
	}
	if msg.UUID != "" {
		return msg.UUID
	}
	if pos, ok := transport.PositionFrom(msg.Context()); ok {
		return fmt.Sprintf("%s-%d-%d", message.SubscribeTopicFromCtx(msg.Context()), pos.Partition, pos.Offset)
	}
	return uuid.NewString()
}
