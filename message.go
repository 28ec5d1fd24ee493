package pubsub

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/codec"
	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/middleware"
	"github.com/pubsubkit/pubsub/transport"
)

// Message is a decoded message as a handler receives it. A handler owns its Message:
// it may keep or change it.
type Message[T any] struct {
	ID            string            // unique id, the same on every redelivery: a UUID from pubsubkit; from another producer, its watermill id header or "topic-partition-offset"
	CorrelationID string            // conversation id, shared by the messages of one flow
	Topic         string            // topic it was consumed from
	Key           string            // partition key, "" when none
	Payload       T                 // the decoded value
	Metadata      map[string]string // metadata set with WithMetadata, and on a dead-letter topic the dead-letter keys (package metadata); pubsubkit's other keys are in the fields. nil when the message carries none: reading it works, a handler that adds keys makes the map first
	Attempt       int               // 1 for the first delivery
	PublishedAt   time.Time         // when the publisher created it
	// RawPayload is the payload as it arrived, before decoding (a CloudEvent's data).
	// Its bytes are shared with the transport's record and its redeliveries: read
	// them, copy them, but do not change them.
	RawPayload []byte
	// DecodeError is nil, except on a dead-letter topic (see ReadsDeadLetters) for a
	// letter whose payload does not decode as T: then Payload is T's zero value and
	// DecodeError says why (it wraps *middleware.PermanentError).
	DecodeError error
}

// Handler handles one message of a subscription. Returning nil acks the message;
// an error fails this attempt (see Delivery semantics in the package documentation);
// Permanent(err) skips retries. ctx ends when the drain timeout of a shutdown runs out.
type Handler[T any] func(ctx context.Context, m *Message[T]) error

// CorrelationID returns the correlation id carried by ctx: inside a handler, the id of
// the message being handled. It returns "" when there is none.
func CorrelationID(ctx context.Context) string {
	return middleware.CorrelationIDFromContext(ctx)
}

// Decode turns a Watermill message published to t back into a typed Message, as a
// handler would receive it; dead letters and captured messages are read with it. A
// CloudEvent, in binary or structured mode, is read as one: its data is the payload,
// Message.ID its id, PublishedAt its time, Key its partitionkey when the record has no
// key, and Metadata holds its attributes and extensions as "ce_<name>". The error
// wraps *middleware.PermanentError when the payload cannot be decoded or was written
// in another content type than the codec reads.
func Decode[T any](t Topic[T], msg *message.Message) (*Message[T], error) {
	m, err := decode(t, msg)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// decodeStage is the chain's innermost stage (see chain.go) and its handler: it
// refuses a payload over limit, decodes the message as t's type and calls h with it.
// A failure is permanent (it skips retries); on a subscription that reads dead letters
// (s.letters, settled once s is prepared) a message that does not decode, or is over
// the limit, still reaches h, with DecodeError set and the bytes in RawPayload.
func decodeStage[T any](t Topic[T], limit int, s *subscription, h func(*message.Message, *Message[T]) error) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		if limit > 0 && len(msg.Payload) > limit && !s.letters {
			return nil, tooLarge(t, msg, len(msg.Payload), limit) // before any parsing
		}
		m, err := decodeUpTo(t, msg, limit)
		switch {
		case err != nil && m != nil && s.letters:
			m.DecodeError = err // a letter that does not decode still reaches the handler
		case err != nil:
			return nil, err
		}
		return nil, h(msg, m)
	}
}

// decode is Decode, except that when the payload does not decode (another content
// type, or bytes the codec refuses) it returns the message too, with every field but
// Payload set, beside the error.
func decode[T any](t Topic[T], msg *message.Message) (*Message[T], error) {
	return decodeUpTo(t, msg, 0)
}

// decodeUpTo is decode for payloads of at most limit bytes (0: any): a larger one is
// not unmarshalled, and the message comes back with the ErrPayloadTooLarge error.
func decodeUpTo[T any](t Topic[T], msg *message.Message, limit int) (*Message[T], error) {
	e, err := readEvent(msg)
	if err != nil {
		return nil, middleware.Permanent(fmt.Errorf("pubsub: message %s on %q: %w", msg.UUID, t.name, err))
	}
	m := &Message[T]{
		ID:            msg.UUID,
		CorrelationID: msg.Metadata.Get(metadata.CorrelationID),
		Topic:         t.name,
		Key:           msg.Metadata.Get(metadata.Key),
		Attempt:       metadata.AttemptOf(msg.Metadata.Get(metadata.Attempt)),
	}
	// the map is made for the first key a handler sees: most messages carry none
	for k, v := range msg.Metadata {
		if metadata.ForHandler(k) {
			m.setMetadata(k, v)
		}
	}
	for k, v := range e.attributes {
		m.setMetadata(k, v)
	}
	if e.id != "" {
		m.ID = e.id
	}
	if m.Key == "" {
		m.Key = m.Metadata[metadata.CloudEventsKey]
	}
	var ok bool
	if m.PublishedAt, ok = metadata.ParseTime(msg.Metadata.Get(metadata.PublishedAt)); !ok {
		if m.PublishedAt, ok = metadata.ParseTime(m.Metadata[metadata.CloudEventsTime]); !ok {
			pos, _ := transport.PositionFrom(msg.Context())
			m.PublishedAt = pos.Time
		}
	}
	m.RawPayload = e.payload
	if limit > 0 && len(e.payload) > limit {
		return m, tooLarge(t, msg, len(e.payload), limit)
	}
	if ct := e.contentType; ct != "" && ct != t.codec.ContentType() && !codecReads(t.codec, metadata.MediaType(ct)) {
		return m, middleware.Permanent(fmt.Errorf("pubsub: message %s on %q has content type %q, the topic's codec reads %q",
			msg.UUID, t.name, ct, t.codec.ContentType()))
	}
	if err := t.codec.Unmarshal(e.payload, &m.Payload); err != nil {
		var zero T
		m.Payload = zero // what a failed Unmarshal left half-filled
		return m, middleware.Permanent(fmt.Errorf("pubsub: cannot decode message %s on %q as %s: %w",
			msg.UUID, t.name, t.typeName, err))
	}
	return m, nil
}

// setMetadata sets k to v in m.Metadata, making the map first when m has none.
func (m *Message[T]) setMetadata(k, v string) {
	if m.Metadata == nil {
		m.Metadata = map[string]string{}
	}
	m.Metadata[k] = v
}

// tooLarge is the permanent error of a message of n bytes, over the limit.
func tooLarge[T any](t Topic[T], msg *message.Message, n, limit int) error {
	return Permanent(fmt.Errorf("%w: message %s on %q has %d bytes, the limit is %d", ErrPayloadTooLarge, msg.UUID, t.name, n, limit))
}

// codecReads reports whether c decodes payloads of the media type mediaType: Raw
// takes any bytes, the other codecs their own content type.
func codecReads(c codec.Codec, mediaType string) bool {
	return c == codec.Raw || metadata.MediaType(c.ContentType()) == mediaType
}
