package pubsub

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/trace"

	"github.com/pubsubkit/pubsub/codec"
	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/middleware"
)

// PublishOption configures one Publish, PublishBatch or PublishAsync call.
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
// metadata) are refused. Bytes of value that are not valid UTF-8 are replaced by
// U+FFFD (metadata.ValidUTF8): header values are read as UTF-8.
func WithMetadata(key, value string) PublishOption {
	return func(o *publishOptions) {
		if o.metadata == nil {
			o.metadata = map[string]string{}
		}
		o.metadata[key] = metadata.ValidUTF8(value)
	}
}

// WithCorrelationID sets the message's correlation id, overriding the one in ctx;
// bytes that are not valid UTF-8 are replaced by U+FFFD (metadata.ValidUTF8).
func WithCorrelationID(id string) PublishOption {
	return func(o *publishOptions) { o.correlationID = metadata.ValidUTF8(id) }
}

// Publish encodes v with the topic's codec and publishes it. It returns once the
// transport has stored the message (on Kafka: acknowledged by all in-sync replicas), or
// with the error that prevented it; the message is then not published, and calling
// Publish again is safe.
//
// The message's correlation id is, in order: WithCorrelationID, the id in ctx (inside a
// handler, the id of the message being handled), or, for a new conversation, the
// message's own id. It goes out as the correlation_id header, and, inside a handler
// of a message that carried it as x-correlation-id, correlation-id or
// ce_correlationid, under that header as well. Publish is safe for concurrent use.
func Publish[T any](ctx context.Context, c *Client, t Topic[T], v T, opts ...PublishOption) error {
	if lean, err := publishOutgoingSync(ctx, c, t, v, opts); lean {
		return err
	}
	msg, err := newMessage(ctx, c, t, v, opts)
	if err != nil {
		return err
	}
	return c.publish(ctx, t.name, msg)
}

// PublishAsync encodes v and queues it for publishing, as Publish would publish it,
// and returns once it is queued: at once, unless the queue is full, when it waits for
// room until ctx is done (backpressure). done is called exactly once: with nil once
// the message is stored, or with the error that prevented it. A value that cannot be
// encoded, a payload over the limit, a closed client or a done ctx fail at once,
// before PublishAsync returns. Messages of one key published from one goroutine are
// stored in the order published.
//
// Once queued, the message no longer depends on ctx: cancelling it does not withdraw
// the message (ctx still gives the correlation id and the trace). done may run on a
// goroutine of the transport that serves other messages' callbacks: it must be quick
// and must not publish synchronously. A nil done is allowed; failures are then logged.
// Flush waits for every queued message; Close flushes too. PublishAsync is safe for
// concurrent use.
func PublishAsync[T any](ctx context.Context, c *Client, t Topic[T], v T, done func(error), opts ...PublishOption) {
	if done == nil {
		done = c.logUnsent(t.name)
	}
	if publishOutgoing(ctx, c, t, v, done, nil, 0, opts) {
		return
	}
	msg, err := newMessage(ctx, c, t, v, opts)
	if err != nil {
		done(err)
		return
	}
	c.publishAsync(ctx, t.name, msg, done)
}

// PublishBatch publishes every value of vs, as PublishAsync does, and returns once
// each is stored or has failed. When some failed, the error is a *BatchError naming
// their indexes (errors.As); all the others are stored. Messages of one key keep the
// order of vs. PublishBatch is safe for concurrent use.
func PublishBatch[T any](ctx context.Context, c *Client, t Topic[T], vs []T, opts ...PublishOption) error {
	b := &batchSends{errs: make([]error, len(vs))}
	b.wg.Add(len(vs))
	for i, v := range vs {
		if publishOutgoing(ctx, c, t, v, nil, b, i, opts) {
			continue // on the lean path, settled into b without a callback per value
		}
		PublishAsync(ctx, c, t, v, func(err error) { b.settle(i, err) }, opts...)
	}
	b.wg.Wait()
	return batchError(t.name, b.errs)
}

// Flush waits until every message queued by PublishAsync and PublishBatch so far is
// stored or has failed, or ctx is done.
func (c *Client) Flush(ctx context.Context) error {
	if err := c.flush(ctx); err != nil {
		return fmt.Errorf("pubsub: Flush: %w", err)
	}
	return nil
}

func (c *Client) flush(ctx context.Context) error { return c.async().Flush(ctx) }

// Encode returns the message Publish would publish for v: its payload encoded by the
// topic's codec, a new id, and the metadata (content type, type, publish time, key,
// correlation id, and the W3C trace context of ctx's span) Publish gives it. Use it
// with PublishMessage to store a message first and publish it later, as a
// transactional outbox does: the published message continues ctx's conversation and
// trace. Encode is safe for concurrent use.
func Encode[T any](ctx context.Context, c *Client, t Topic[T], v T, opts ...PublishOption) (*message.Message, error) {
	msg, err := newMessage(ctx, c, t, v, opts)
	if err != nil {
		return nil, err
	}
	middleware.InjectTrace(ctx, msg)
	return msg, nil
}

// PublishMessage publishes msg, a message made by Encode (possibly stored and read
// back), to topic, and waits as Publish does. Its send span is a child of the trace
// context msg carries, and its trace log line has its correlation id, so a message
// published later still belongs to the conversation that made it. PublishMessage is
// safe for concurrent use; msg must not be changed once it is published.
func (c *Client) PublishMessage(ctx context.Context, topic string, msg *message.Message) error {
	if err := validName("topic", topic); err != nil {
		return err
	}
	return c.publish(middleware.ExtractTrace(ctx, msg), topic, msg)
}

// PublishMessageAsync is PublishMessage without waiting, as PublishAsync: done is
// called exactly once.
func (c *Client) PublishMessageAsync(ctx context.Context, topic string, msg *message.Message, done func(error)) {
	if done == nil {
		done = c.logUnsent(topic)
	}
	if err := validName("topic", topic); err != nil {
		done(err)
		return
	}
	c.publishAsync(middleware.ExtractTrace(ctx, msg), topic, msg, done)
}

// newMessage encodes v and makes the message that Publish hands to the transport.
func newMessage[T any](ctx context.Context, c *Client, t Topic[T], v T, opts []PublishOption) (*message.Message, error) {
	e, err := encode(ctx, c, t, v, opts)
	if err != nil {
		return nil, err
	}
	id, publishedAt := newIDAndTime(e.at)
	correlationID := e.correlationID
	if correlationID == "" {
		correlationID = id // a new conversation is named after its first message
	}
	msg := message.NewMessage(id, e.payload)
	for k, val := range e.o.metadata {
		msg.Metadata[k] = val
	}
	msg.Metadata[metadata.ContentType] = t.codec.ContentType()
	msg.Metadata[metadata.MessageType] = t.typeName
	msg.Metadata[metadata.PublishedAt] = publishedAt
	msg.Metadata[metadata.CorrelationID] = correlationID
	if e.correlationHeader != "" && msg.Metadata[e.correlationHeader] == "" {
		msg.Metadata[e.correlationHeader] = correlationID
	}
	if e.key != "" { // an empty key is no key, as on the lean path and on Kafka
		msg.Metadata[metadata.Key] = e.key
	}
	if t.ceSource != nil {
		setCloudEventsAttributes(msg, *t.ceSource, t.ceType, e.o.metadata)
	}
	return msg, nil
}

// encoded is what every published message of a typed value is made of, whichever
// form (a Watermill message or a transport.Outgoing) it then takes.
type encoded struct {
	o                 publishOptions
	payload           []byte
	at                time.Time // the publish time, read once per message
	correlationID     string    // "" for a new conversation, named after the message's own id
	correlationHeader string    // the spelling of the handled message's correlation header, when it had another
	key               string    // "" for none
}

// encode checks the options, encodes v and reads what names the message: its publish
// time, its correlation id and its key. The id is the caller's to make, in the form it
// writes (newIDAndTime, or outgoingSend's buffer).
func encode[T any](ctx context.Context, c *Client, t Topic[T], v T, opts []PublishOption) (encoded, error) {
	var e encoded
	if err := t.validate(); err != nil {
		return e, err
	}
	if len(opts) > 0 {
		e.o = applyPublishOptions(opts)
	}
	for k := range e.o.metadata {
		if metadata.Reserved(k) || k == "" {
			return e, fmt.Errorf("pubsub: %w: metadata key %q is reserved or empty", ErrInvalidOption, k)
		}
	}
	payload, err := marshal(t.codec, v)
	if err != nil {
		return e, fmt.Errorf("pubsub: cannot encode %s for topic %q: %w", t.typeName, t.name, err)
	}
	if limit := c.opts.maxPayload; limit > 0 && len(payload) > limit {
		return e, fmt.Errorf("%w: %s for topic %q encodes to %d bytes, the limit is %d",
			ErrPayloadTooLarge, t.typeName, t.name, len(payload), limit)
	}
	e.payload = payload
	e.at = time.Now()
	e.correlationID = e.o.correlationID
	if e.correlationID == "" {
		e.correlationID = CorrelationID(ctx)
	}
	if h := middleware.CorrelationHeaderFromContext(ctx); h != metadata.CorrelationID {
		e.correlationHeader = h // the spelling the handled message used, for services keyed on it
	}
	switch {
	case e.o.key != nil:
		e.key = *e.o.key
	case t.key != nil:
		e.key = t.key(v)
	}
	return e, nil
}

// marshal is c.Marshal(v), without boxing v into an interface when c is codec.Raw
// and v a []byte: the payload is then v itself, as Raw returns it.
func marshal[T any](c codec.Codec, v T) ([]byte, error) {
	if c == codec.Raw {
		if b, ok := any(&v).(*[]byte); ok {
			return *b, nil
		}
	}
	return c.Marshal(v)
}

// applyPublishOptions is a function of its own so that a publish without options
// does not allocate its options.
func applyPublishOptions(opts []PublishOption) publishOptions {
	var o publishOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}

// publish sends one prepared message and waits; Publish and PublishMessage share it.
func (c *Client) publish(ctx context.Context, topic string, msg *message.Message) error {
	if !c.publishing() {
		return fmt.Errorf("pubsub: publish to %q: %w", topic, ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx, span, start := c.handOver(ctx, topic, msg)
	one := oneMessage.Get().(*[1]*message.Message)
	one[0] = msg
	err := c.tr.Publish(topic, one[:]...)
	one[0] = nil
	oneMessage.Put(one)
	c.settled(ctx, topic, msg, span, start, err)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("pubsub: publish to %q: %w", topic, err)
	}
	return nil
}

// oneMessage holds the one-message slices publish passes to Transport.Publish: a slice
// made per call would be an allocation per message, since the call is through an
// interface.
var oneMessage = sync.Pool{New: func() any { return new([1]*message.Message) }}

// publishAsync queues one prepared message; done hears how it went.
func (c *Client) publishAsync(ctx context.Context, topic string, msg *message.Message, done func(error)) {
	if !c.publishing() {
		done(fmt.Errorf("pubsub: publish to %q: %w", topic, ErrClosed))
		return
	}
	if err := ctx.Err(); err != nil {
		done(err)
		return
	}
	ctx, span, start := c.handOver(ctx, topic, msg)
	c.pending.Add(1)
	c.async().PublishAsync(ctx, topic, msg, func(err error) {
		c.settled(ctx, topic, msg, span, start, err)
		c.pending.Add(-1)
		if err != nil {
			err = fmt.Errorf("pubsub: publish to %q: %w", topic, err)
		}
		done(err)
	})
}

// handOver starts the message's PRODUCER span and writes its trace log line, just
// before the transport gets it. The line is written then, not when the transport
// acknowledges the message: a consumer may handle the message, and log that, before
// the acknowledgement returns here, and the log must read in causal order.
func (c *Client) handOver(ctx context.Context, topic string, msg *message.Message) (context.Context, trace.Span, time.Time) {
	ctx, span := middleware.StartSend(ctx, c.obs.tracer, c.obs.system, topic, msg)
	msg.SetContext(ctx)
	if c.obs.traceLog != nil {
		c.obs.traceLog.Log(ctx, Event{Kind: EventPublished, Topic: topic, MessageID: msg.UUID,
			CorrelationID: msg.Metadata.Get(metadata.CorrelationID), Message: msg})
	}
	return ctx, span, time.Now()
}

// settled ends the publish's span and tells the observers how it went: published, or
// failed (an EventFailed without a group).
func (c *Client) settled(ctx context.Context, topic string, msg *message.Message, span trace.Span, start time.Time, err error) {
	middleware.EndSend(span, err)
	e := Event{Kind: EventPublished, Topic: topic, Message: msg, Duration: time.Since(start)}
	if err != nil {
		e.Kind, e.Err = EventFailed, fmt.Errorf("publish: %w", err)
	}
	c.obs.report(ctx, e)
}

// logUnsent is the done of a PublishAsync without one: it logs failures.
func (c *Client) logUnsent(topic string) func(error) {
	return func(err error) {
		if err != nil {
			c.opts.logger.Error("pubsub: a message published with PublishAsync and no done callback was not stored",
				"topic", topic, "error", err)
		}
	}
}
