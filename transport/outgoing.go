package transport

import (
	"context"
	"time"
)

// Outgoing is a message on its way out in the form a record is written: its id, its
// partition key, its payload and its other metadata as headers in order, every value
// as the bytes written. A client publishing a typed value hands a transport an
// Outgoing instead of a Watermill message when the transport implements
// [OutgoingPublisher] and nothing on the way (tracing, a trace log, hooks, CloudEvents
// attributes) asks for the Watermill message: it costs no metadata map, no message
// channels and no copy of a value into a string and back.
type Outgoing struct {
	ID      []byte
	Key     []byte // the partition key (metadata.Key); nil or empty for none
	Payload []byte
	// Headers are the message's other metadata entries, each key once. pubsubkit's
	// keys are among them (content type, type, publish time, correlation id); the id
	// and the key are not.
	Headers []Header
	// Time is when the message was published (the time in its publish-time header),
	// for a transport whose records carry a time of their own (Kafka's timestamp);
	// zero leaves that to the transport's clock.
	Time time.Time
}

// Header is one metadata entry of an Outgoing message: its key and its value's bytes
// (UTF-8 text, as every metadata value).
type Header struct {
	Key   string
	Value []byte
}

// OutgoingPublisher is implemented by transports that take an Outgoing message
// without a Watermill message (Kafka, memory). It is an [AsyncPublisher]; the client
// uses it for Publish, PublishAsync and PublishBatch when it can.
//
// In both methods the payload may be kept longer than said below, as
// Transport.Publish may keep a message's (the memory transport stores it): the caller
// must never change it once it is handed over. The id, key and header values are the
// caller's again at the times said below, so a transport that stores them copies them.
type OutgoingPublisher interface {
	AsyncPublisher
	// PublishOutgoingAsync is AsyncPublisher.PublishAsync for m: the same queueing,
	// order, backpressure and done rules. The transport must not keep m itself after
	// it returns, but may keep, and write as they are, the byte slices m refers to (id,
	// key, payload, header values) until done is called; the caller must not change
	// them until then, and the transport must not change them at all.
	// done.Settle is called as AsyncPublisher.PublishAsync calls done (an interface
	// rather than a function, so that the caller's state needs no closure).
	PublishOutgoingAsync(ctx context.Context, topic string, m *Outgoing, done Settler)
	// PublishOutgoing is Transport.Publish for m: it returns once m is stored, or
	// with the error that prevented it, and gives up when ctx is done. m and the bytes
	// it refers to are the transport's to read until it returns.
	PublishOutgoing(ctx context.Context, topic string, m *Outgoing) error
}

// Settler hears how one message of PublishOutgoingAsync went: Settle is called exactly
// once, with nil once the message is stored or with the error that prevented it.
type Settler interface {
	Settle(err error)
}
