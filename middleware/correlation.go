package middleware

import (
	"cmp"
	"context"
	"encoding/json"
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

// ContextWithCorrelation returns a context carrying the correlation id id and the
// header, other than metadata.CorrelationID, that the message being handled carried
// it in (one of CorrelationHeaders; "" for none): what the handler publishes carries
// the id in that header too.
func ContextWithCorrelation(ctx context.Context, id, header string) context.Context {
	return &correlationContext{Context: ctx, id: id, header: header}
}

// correlationContext carries a correlation id in one allocation (context.WithValue
// would need a second one to box the string), with room for the context a Detach
// stage inside the CorrelationID stage gives the handler: a message's chain then puts
// one allocation into its context, not two.
type correlationContext struct {
	context.Context
	id, header string
	// handler is the detached context of the first Detach stage (by) that found this
	// context as the message's; set once, before the handler runs.
	handler detached
	by      *detachStage
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

// CorrelationHeaderFromContext returns the header besides metadata.CorrelationID that
// the message handled in ctx carried its correlation id in (see
// ContextWithCorrelation), or "".
func CorrelationHeaderFromContext(ctx context.Context) string {
	if c, ok := ctx.Value(correlationKey{}).(*correlationContext); ok {
		return c.header
	}
	return ""
}

// CorrelationHeaders are the other spellings of metadata.CorrelationID that clients
// outside pubsubkit name a conversation with, in the order they are read:
// x-correlation-id, correlation-id and ce_correlationid (the CloudEvents extension
// correlationid in binary mode).
var CorrelationHeaders = [...]string{"x-correlation-id", "correlation-id", metadata.CloudEventsPrefix + "correlationid"}

// CorrelationHeaderOf returns the first of CorrelationHeaders that md holds, or "".
func CorrelationHeaderOf(md message.Metadata) string {
	for _, k := range CorrelationHeaders {
		if md[k] != "" {
			return k
		}
	}
	return ""
}

// ResolveCorrelationID returns msg's correlation id and makes sure its metadata holds
// it under metadata.CorrelationID: the one it has, or else the one CorrelationID
// describes for a message from outside pubsubkit. Every stage that reports the id
// (the span, the trace log, the event hook) calls it, so they agree whatever header
// brought the id, and whichever runs first.
func ResolveCorrelationID(msg *message.Message) string {
	id := msg.Metadata[metadata.CorrelationID]
	if id == "" {
		id = foreignCorrelationID(msg)
		msg.Metadata.Set(metadata.CorrelationID, id)
	}
	return id
}

// CorrelationID puts the message's correlation id into its context, so that
// everything the handler publishes continues the same conversation. Messages the
// handler returns (on a plain Watermill router) get the id too. When the message
// carried the id in one of CorrelationHeaders (x-correlation-id, say), the context
// says so too, and what the handler publishes or returns carries the id under that
// header as well as under metadata.CorrelationID, so that a service keyed on that
// spelling keeps the conversation.
//
// A message from a producer outside pubsubkit has no metadata.CorrelationID; its id
// is then the first of these it carries: a correlation_id, x-correlation-id,
// correlation-id or ce_correlationid header, its CloudEvents ce_id (or, in structured
// mode, the envelope's correlationid or id), or its message id
// (for a foreign Kafka record "topic-partition-offset"), or, for a message without
// an id, "topic-partition-offset" from its transport.Position. Every group and every
// redelivery of one record so agree on its correlation id.
func CorrelationID(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		id := ResolveCorrelationID(msg)
		header := CorrelationHeaderOf(msg.Metadata)
		msg.SetContext(ContextWithCorrelation(msg.Context(), id, header))
		produced, err := h(msg)
		for _, p := range produced {
			if p.Metadata.Get(metadata.CorrelationID) == "" {
				p.Metadata.Set(metadata.CorrelationID, id)
			}
			if header != "" && p.Metadata.Get(header) == "" {
				p.Metadata.Set(header, p.Metadata.Get(metadata.CorrelationID))
			}
		}
		return produced, err
	}
}

// foreignCorrelationID is the correlation id of a message that came without ours:
// one a foreign producer set, or else the message's own identity.
func foreignCorrelationID(msg *message.Message) string {
	if h := CorrelationHeaderOf(msg.Metadata); h != "" {
		return msg.Metadata[h]
	}
	if id := msg.Metadata[metadata.CloudEventsID]; id != "" {
		return id
	}
	// a structured event names itself in its envelope; one that does not parse falls
	// through to its message id and fails in Decode
	if e, ok := structuredEnvelope(msg); ok && cmp.Or(e.CorrelationID, e.ID) != "" {
		return cmp.Or(e.CorrelationID, e.ID)
	}
	if msg.UUID != "" {
		return msg.UUID
	}
	if pos, ok := transport.PositionFrom(msg.Context()); ok {
		return fmt.Sprintf("%s-%d-%d", message.SubscribeTopicFromCtx(msg.Context()), pos.Partition, pos.Offset)
	}
	return uuid.NewString()
}

// envelope is what the stages before Decode read of a structured-mode CloudEvent: its
// id and the extensions that name its conversation and trace.
type envelope struct {
	ID, CorrelationID, TraceParent, TraceState string
}

// structuredEnvelope reads msg's envelope when msg is a structured-mode CloudEvent
// that parses.
func structuredEnvelope(msg *message.Message) (envelope, bool) {
	if !metadata.IsMediaType(metadata.ContentTypeOf(msg.Metadata), metadata.StructuredCloudEvent) {
		return envelope{}, false // before e is declared: json.Unmarshal would move it to the heap
	}
	var e envelope
	return e, json.Unmarshal(msg.Payload, &e) == nil
}
