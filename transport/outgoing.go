package transport

import "context"

// Outgoing is a message on its way out in the form a record is written: its id, its
// partition key, its payload and its other metadata as headers in order. A client
// publishing a typed value hands a transport an Outgoing instead of a Watermill
// message when the transport implements [OutgoingPublisher] and nothing on the way
// (tracing, a trace log, hooks, CloudEvents attributes) asks for the Watermill
// message: it costs no metadata map and no message channels.
type Outgoing struct {
	ID      string
	Key     string // the partition key (metadata.Key); "" for none
	Payload []byte
	// Headers are the message's other metadata entries, each key once. pubsubkit's
	// keys are among them (content type, type, publish time, correlation id); the id
	// and the key are not.
	Headers []Header
}

// Header is one metadata entry of an Outgoing message.
type Header struct {
	Key, Value string
}

// OutgoingPublisher is implemented by transports that take an Outgoing message
// without a Watermill message (Kafka). It is an [AsyncPublisher]; the client uses it
// for Publish, PublishAsync and PublishBatch when it can.
type OutgoingPublisher interface {
	AsyncPublisher
	// PublishOutgoingAsync is AsyncPublisher.PublishAsync for m: the same queueing,
	// order, backpressure and done rules. The transport may keep m's payload and
	// header strings until done is called; the caller must not change them.
	// done.Settle is called as AsyncPublisher.PublishAsync calls done (an interface
	// rather than a function, so that the caller's state needs no closure).
	PublishOutgoingAsync(ctx context.Context, topic string, m *Outgoing, done Settler)
	// PublishOutgoing is Transport.Publish for m: it returns once m is stored, or
	// with the error that prevented it, and gives up when ctx is done.
	PublishOutgoing(ctx context.Context, topic string, m *Outgoing) error
}

// Settler hears how one message of PublishOutgoingAsync went: Settle is called exactly
// once, with nil once the message is stored or with the error that prevented it.
type Settler interface {
	Settle(err error)
}
