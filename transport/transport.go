// Package transport defines what a message transport must do for pubsubkit, and opens
// transports by URL.
//
// A transport moves bytes: it knows nothing of codecs, retries or dead letters. Those
// live once, in the pubsub package and its middleware, above every transport.
package transport

import (
	"context"
	"errors"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Transport is a Watermill publisher with group-aware subscriptions and declared
// capabilities. Implementations must be safe for concurrent use by many goroutines.
type Transport interface {
	// Publish stores messages on topic and returns once the transport has accepted all
	// of them durably, to the degree its capabilities promise (Kafka: acknowledged by
	// all in-sync replicas). An error means some messages may not have been stored; the
	// caller decides whether to publish again.
	//
	// Publish does not retry beyond what its own client does internally (for Kafka, the
	// producer's bounded retries); retries of failed handlers are the caller's concern.
	// It may block for backpressure, and then gives up when the context of the first
	// message (message.Message.Context) is done. It must not keep or modify the
	// messages after it returns, and must not call Ack or Nack on them.
	Publish(topic string, messages ...*message.Message) error

	// SubscribeGroup consumes topic as a member of the consumer group group and returns
	// the channel of delivered messages. Every group receives every message of the
	// topic; within a group each message goes to one member. An empty group subscribes
	// alone, without a group: that subscription receives every retained message from
	// the oldest on, and its position is forgotten when it ends.
	//
	// Each delivered message must be acked or nacked exactly once. Ack commits it for
	// the group. Nack asks for redelivery: the transport delivers it again after a pause
	// (never in a busy loop) and, when the transport keeps order, before the messages
	// behind it. The transport retries nothing on its own beyond that.
	//
	// The channel is closed when ctx is done or the transport is closed; messages in
	// flight at that moment may still be acked or nacked. A delivered message's context
	// carries ctx's values and ends when the message is acked or nacked, when ctx is done
	// or when the transport closes, as in Watermill; a consumer that must finish its work
	// during a graceful drain detaches from it (the pubsub client does). SubscribeGroup
	// returns once the subscription is registered: messages published after it returns
	// reach it.
	SubscribeGroup(ctx context.Context, topic, group string) (<-chan *message.Message, error)

	// Capabilities reports what this transport guarantees. It must not change over the
	// transport's life.
	Capabilities() Capabilities

	// Close stops every subscription (closing their channels), releases resources and
	// waits for the transport's goroutines. It is idempotent. Publish and SubscribeGroup
	// return an error wrapping ErrClosed afterwards.
	Close() error
}

// Capabilities declares what a transport guarantees, so that the client can refuse a
// combination it cannot honour when it is built rather than misbehave later.
type Capabilities struct {
	// ConsumerGroups: every group gets every message once; members of one group share
	// the messages.
	ConsumerGroups bool
	// Ordered: within a group, messages of one key (one partition) are delivered in
	// publish order with one in flight, and a nacked message is redelivered before the
	// messages behind it.
	Ordered bool
	// Retains: messages published before a group first subscribes are kept and
	// delivered to it when it does.
	Retains bool
	// Persistent: messages and group positions survive a restart of the process.
	Persistent bool
	// PartitionKeys: the metadata key metadata.Key chooses a partition, so different
	// keys may be consumed in parallel while one key keeps its order.
	PartitionKeys bool
}

// Position locates a delivered message in its topic, where the transport has such a
// notion. Transports put it in the delivered message's context; read it with
// PositionFrom.
type Position struct {
	Partition int32
	Offset    int64
}

type positionKey struct{}

// WithPosition returns a context that carries p. Transports call it for each delivered
// message.
func WithPosition(ctx context.Context, p Position) context.Context {
	return context.WithValue(ctx, positionKey{}, p)
}

// PositionFrom returns the position a transport recorded in ctx, and whether there was
// one.
func PositionFrom(ctx context.Context) (Position, bool) {
	p, ok := ctx.Value(positionKey{}).(Position)
	return p, ok
}

// Errors a transport returns, to be matched with errors.Is.
var (
	// ErrClosed: the transport was closed.
	ErrClosed = errors.New("transport closed")
	// ErrInvalidOption: a URL parameter or Config field is not valid.
	ErrInvalidOption = errors.New("invalid option")
	// ErrUnknownScheme: no transport is registered for the URL's scheme.
	ErrUnknownScheme = errors.New("unknown URL scheme")
)
