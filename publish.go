package pubsub

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/pubsubkit/pubsub/metadata"
)

// PublishOption configures one Publish call.
type PublishOption func(*publishOptions)

type publishOptions struct {
	key           *string
	correlationID string
	metadata      map[string]string
}

// WithMessageKey sets the message's partition key, overriding the topic's WithKey
// function.
func WithMessageKey(key string) PublishOption {
	return func(o *publishOptions) { o.key = &key }
}

// WithMetadata adds a metadata entry that travels with the message (a Kafka header)
// and reaches the handler in Message.Metadata. Keys that pubsubkit owns (see package
// metadata) are refused.
func WithMetadata(key, value string) PublishOption {
	return func(o *publishOptions) {
		if o.metadata == nil {
			o.metadata = map[string]string{}
		}
		o.metadata[key] = value
	}
}

// WithCorrelationID sets the message's correlation id, overriding the one in ctx.
func WithCorrelationID(id string) PublishOption {
	return func(o *publishOptions) { o.correlationID = id }
}

// Publish encodes v with the topic's codec and publishes it. It returns once the
// transport has stored the message (on Kafka: acknowledged by all in-sync replicas), or
// with the error that prevented it; the message is then not published, and calling
// Publish again is safe.
//
// The message's correlation id is, in order: WithCorrelationID, the id in ctx (inside a
// handler, the id of the message being handled), or a new one. Publish is safe for
// concurrent use.
func Publish[T any](ctx context.Context, c *Client, t Topic[T], v T, opts ...PublishOption) error {
	if err := t.validate(); err != nil {
		return err
	}
	var o publishOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	for k := range o.metadata {
		if metadata.Reserved(k) || k == "" {
			return fmt.Errorf("pubsub: %w: metadata key %q is reserved or empty", ErrInvalidOption, k)
		}
	}
	payload, err := t.codec.Marshal(v)
	if err != nil {
		return fmt.Errorf("pubsub: cannot encode %s for topic %q: %w", typeName[T](), t.name, err)
	}
	if limit := c.opts.maxPayload; limit > 0 && len(payload) > limit {
		return fmt.Errorf("%w: %s for topic %q encodes to %d bytes, the limit is %d",
			ErrPayloadTooLarge, typeName[T](), t.name, len(payload), limit)
	}

	msg := message.NewMessage(uuid.NewString(), payload)
	for k, val := range o.metadata {
		msg.Metadata.Set(k, val)
	}
	msg.Metadata.Set(metadata.ContentType, t.codec.ContentType())
	msg.Metadata.Set(metadata.MessageType, typeName[T]())
	msg.Metadata.Set(metadata.PublishedAt, time.Now().UTC().Format(time.RFC3339Nano))
	cid := o.correlationID
	if cid == "" {
		cid = CorrelationID(ctx)
	}
	if cid == "" {
		cid = uuid.NewString()
	}
	msg.Metadata.Set(metadata.CorrelationID, cid)
	switch {
	case o.key != nil:
		msg.Metadata.Set(metadata.Key, *o.key)
	case t.key != nil:
		msg.Metadata.Set(metadata.Key, t.key(v))
	}
	return c.publish(ctx, t.name, msg)
}

// publish sends one prepared message; the typed and the replay paths share it.
func (c *Client) publish(ctx context.Context, topic string, msg *message.Message) error {
	if c.isReleased() {
		return fmt.Errorf("pubsub: publish to %q: %w", topic, ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx, span := c.tel.startPublish(ctx, topic, msg)
	defer span.End()
	msg.SetContext(ctx)
	// The trace log line is written when the message is handed over, not when the
	// transport acknowledges it: a consumer may handle the message, and log that,
	// before the acknowledgement returns here, and the log must read in causal order.
	// A failed publish is then logged as failed. Hooks and metrics hear of the publish
	// once it succeeded.
	published := dated(ctx, Event{Kind: EventPublished, Topic: topic, MessageID: msg.UUID,
		CorrelationID: msg.Metadata.Get(metadata.CorrelationID), Message: msg})
	c.logEvent(ctx, published)
	if err := c.tr.Publish(topic, msg); err != nil {
		fail(span, err)
		c.logEvent(ctx, dated(ctx, Event{Kind: EventFailed, Topic: topic, MessageID: msg.UUID,
			CorrelationID: published.CorrelationID, Err: fmt.Errorf("publish: %w", err), Message: msg}))
		c.tel.record(ctx, Event{Kind: EventPublished, Topic: topic, Err: err})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("pubsub: publish to %q: %w", topic, err)
	}
	c.notify(ctx, published)
	return nil
}
