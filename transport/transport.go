// Package transport defines what a message transport must do for pubsubkit, and opens
// transports by URL.
//
// A transport moves bytes: codecs, retries and dead-lettering live once, in the pubsub
// package and its middleware, above every transport. What a transport knows of them
// is written into the contract: it keeps DeadLetterHeadroom free beyond its size
// limit for the keys a dead letter gains, and it lets a message whose in-place retry
// waits give up its concurrency slot ([Waiting]). Transports deliver Watermill
// messages and take them for publishing (a transport may also take a lean
// [Outgoing]); package transport/watermilladapter turns a Transport into a Watermill
// Subscriber (for a plain Watermill router) and any Watermill pub/sub into a
// Transport.
//
// The package holds the contract and the registry: [Transport] and [Subscription], the
// optional interfaces a transport may add ([AsyncPublisher], [OutgoingPublisher] with
// [Outgoing], [Provisioner], [Reader], [TopicLister], [GroupLagger]), [Capabilities],
// [Position], [Waiter], [KeyOrder], the errors, and the [Registry] that opens transports by URL
// scheme.
package transport

import (
	"context"
	"errors"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Transport is a Watermill publisher with group-aware subscriptions and declared
// capabilities. Implementations must be safe for concurrent use by many goroutines.
type Transport interface {
	// Publish stores messages on topic, in order, and returns once the transport has
	// stored all of them durably, to the degree its capabilities promise (Kafka:
	// acknowledged by all in-sync replicas). An error means some messages may not have
	// been stored; the caller decides whether to publish again.
	//
	// Publish does not retry beyond what its own client does internally (for Kafka, the
	// producer's bounded retries); retries of failed handlers are the caller's concern.
	// It may block for backpressure, and then gives up when the context of the first
	// message (message.Message.Context) is done. It may keep each message's payload and
	// metadata as they are (the memory transport stores them without copying), so the
	// caller must not change them once Publish is called; the transport must not
	// modify them, must not keep the messages themselves after it returns, nor call
	// Ack or Nack on them.
	Publish(topic string, messages ...*message.Message) error

	// Subscribe consumes topic as a member of the consumer group opts.Group. Every group
	// receives every message of the topic; within a group each message goes to one
	// member. An empty group subscribes alone: that subscription receives every retained
	// message from the oldest on, and its position is forgotten when it ends.
	//
	// Each delivered message must be acked or nacked exactly once. Ack finishes it for
	// the group; the group's committed position (on Kafka, the committed offset of its
	// partition) is the lowest offset not yet finished, so a restart redoes at most the
	// messages in flight. Nack asks for redelivery: the transport delivers the message
	// again after a pause (never in a busy loop), ahead of the messages it must precede
	// (see SubscribeOptions). The transport retries nothing on its own beyond that.
	//
	// A delivered message's context carries its Position and ends when the message is
	// acked or nacked, when its partition is revoked from this member, when ctx is done
	// or when the transport closes; waits that belong to the message (a retry backoff)
	// should end with it. A message delivered before its context ended may still be
	// acked or nacked for opts.Drain afterwards, and the transport commits what was
	// acked in that time.
	//
	// Subscribe returns once the subscription is registered: messages published after it
	// returns reach it. The subscription ends when ctx is done or the transport closes:
	// nothing new is delivered, and once the messages in flight have settled (or
	// opts.Drain ran out) its Messages channel is closed and Done with it.
	Subscribe(ctx context.Context, topic string, opts SubscribeOptions) (Subscription, error)

	// Capabilities reports what this transport guarantees. It must not change over the
	// transport's life.
	Capabilities() Capabilities

	// Close stops every subscription (closing their channels, committing what was
	// acked), settles or fails every message still queued for publishing, releases
	// resources and waits for the transport's goroutines. It is idempotent. Publish and
	// Subscribe return an error wrapping ErrClosed afterwards. An offset commit that
	// failed while subscriptions ended is part of the error.
	Close() error
}

// SubscribeOptions says how a subscription consumes its topic. The zero value consumes
// alone, one message at a time per partition, in order.
type SubscribeOptions struct {
	// Group is the consumer group; "" consumes alone.
	Group string
	// Concurrency is how many messages of one partition are delivered at once, awaiting
	// their ack; 0 or 1 means one at a time. A transport whose Capabilities lack
	// Concurrency refuses more than 1.
	Concurrency int
	// Unordered lets messages of one key be in flight together. By default (false),
	// messages of one key (metadata.Key) are delivered one at a time in offset order,
	// and a nacked message holds back the later messages of its key; messages without a
	// key are ordered only when Concurrency is 1 (then the whole partition is).
	Unordered bool
	// KeyConcurrency, when ordered (Unordered false) and above 1, lets up to that many
	// messages of one key be in flight at once, still handed out in offset order; the
	// context of each such message answers a KeyOrder (see IsKeyOrderKey) that tells
	// the consumer the message's place among the others of its key, which keeps their
	// order itself (a batch consumer). A nacked message, and one that waits (Waiter),
	// holds back the messages of its key not yet delivered, and those in flight are the
	// consumer's concern. 0 or 1
	// means one at a time, the rule above. A transport that hands out one message of a
	// key at a time anyway may ignore it: then no context answers a KeyOrder.
	KeyConcurrency int
	// Drain is how long messages delivered before their context ended may still be
	// acked or nacked, and committed, when the subscription ends or their partition is
	// revoked. 0 means the transport's default.
	Drain time.Duration
	// FromEnd makes a subscription without a group start at the end of the topic:
	// only messages published after it begin reach it (a tail). A group starts where it
	// left off, or at the oldest message when new, whatever FromEnd says.
	FromEnd bool
}

// Subscription is one running subscription. Its methods are safe for concurrent use.
type Subscription interface {
	// Messages returns the channel of delivered messages. It is closed once the
	// subscription has ended and its messages in flight have settled, or
	// SubscribeOptions.Drain ran out.
	Messages() <-chan *message.Message
	// Done is closed once Messages is closed and the subscription's last position is
	// committed.
	Done() <-chan struct{}
	// Pause stops delivering new messages, as a deliberate act: the member stays in its
	// group and keeps its partitions, messages in flight finish normally. Resume undoes
	// it. Both are idempotent.
	Pause()
	Resume()
	// Stats reports the state of each partition this member consumes now.
	Stats() []PartitionStats
}

// PartitionStats is the state of one partition of a subscription.
type PartitionStats struct {
	Partition int32
	// Committed is the group's position: the lowest offset not yet finished, where a
	// restarted member begins; -1 when not known yet (before the first fetch).
	Committed int64
	// End is the partition's end offset (the offset the next published message will
	// get) as last seen; -1 when unknown. End - Committed is the lag.
	End int64
	// InFlight counts messages delivered and not yet acked or nacked; Buffered counts
	// messages fetched and waiting.
	InFlight, Buffered int
	// Paused is true while the subscription is paused.
	Paused bool
	// LastProgress is when the committed position last moved, the partition was
	// taken on, or the subscription was resumed after a pause.
	LastProgress time.Time
}

// Lag is how many messages of the partition the group has not finished; -1 when the
// end or the committed position is unknown.
func (p PartitionStats) Lag() int64 {
	if p.End < 0 || p.Committed < 0 {
		return -1
	}
	return max(p.End-p.Committed, 0)
}

// Capabilities declares what a transport guarantees, so that the client can refuse a
// subscription it cannot honour when it is made rather than misbehave later.
type Capabilities struct {
	// MessagingSystem names the transport in telemetry (the messaging.system
	// attribute), such as "kafka".
	MessagingSystem string
	// ConsumerGroups: every group gets every message once; members of one group share
	// the messages.
	ConsumerGroups bool
	// Ordered: within a group, messages of one key (one partition) are delivered in
	// publish order, and a nacked message is redelivered before the messages behind it.
	Ordered bool
	// Concurrency: SubscribeOptions.Concurrency above 1 is honoured, with the ordering
	// rules it documents.
	Concurrency bool
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
	// Time is the record's timestamp where the transport keeps one (Kafka's record
	// timestamp, the memory transport's append time); zero otherwise.
	Time time.Time
}

type positionKey struct{}

// IsPositionKey reports whether key is the context key of a delivered message's
// Position. WithPosition stores the Position under it; a transport with a context type
// of its own may answer it from its Value method instead, with a Position or a
// *Position.
func IsPositionKey(key any) bool { return key == positionKey{} }

// WithPosition returns a context that carries p. Transports call it for each delivered
// message.
func WithPosition(ctx context.Context, p Position) context.Context {
	return context.WithValue(ctx, positionKey{}, p)
}

// PositionFrom returns the position a transport recorded in ctx, and whether there was
// one.
func PositionFrom(ctx context.Context) (Position, bool) {
	switch p := ctx.Value(positionKey{}).(type) {
	case Position:
		return p, true
	case *Position:
		return *p, p != nil
	}
	return Position{}, false
}

type waiterKey struct{}

// Waiter is what a delivered message's context answers to the key IsWaiterKey
// accepts, when its transport can let other messages go while this one waits. Wait
// tells the transport that the message now waits (an in-place retry's backoff) rather
// than being handled: it no longer counts against SubscribeOptions.Concurrency, so
// another message, of another key, may be delivered in its place; it stays in flight
// (unfinished, holding back the later messages of its key and the group's position).
// The returned function ends the wait, and must be called, once, before the message
// is handled again, acked or nacked. A transport whose ordering would break (one
// message at a time per partition) answers with a Wait that does nothing.
type Waiter interface {
	Wait() (resume func())
}

// IsWaiterKey reports whether key is the context key under which a delivered
// message's context answers its Waiter.
func IsWaiterKey(key any) bool { return key == waiterKey{} }

// Waiting tells the transport that delivered the message with context ctx that the
// message waits rather than being handled (see Waiter), and returns the function that
// ends the wait. With a transport that has no Waiter it does nothing.
func Waiting(ctx context.Context) (resume func()) {
	if w, ok := ctx.Value(waiterKey{}).(Waiter); ok {
		return w.Wait()
	}
	return func() {}
}

type keyOrderKey struct{}

// KeyOrder is what the context of a delivered message answers to the key
// IsKeyOrderKey accepts, when its subscription lets several messages of one key be in
// flight (SubscribeOptions.KeyConcurrency above 1) and the message has a key. The
// transport hands a key's messages out in offset order; their handlers may reach the
// consumer in any order, and KeyOrder restores it. Its methods are safe for concurrent
// use.
type KeyOrder interface {
	// Key identifies the message's key within the transport's delivery of one
	// partition (a comparable value): messages whose Key values are equal (==) are of
	// one key, and were handed out in offset order.
	Key() any
	// Ready is closed once every earlier message of the key that is still in flight
	// has been passed (Pass) or settled (acked or nacked): the message's turn.
	Ready() <-chan struct{}
	// Pass marks the message as having taken its place among its key's messages (a
	// batch consumer admitted it): the next message of the key becomes Ready. It is
	// idempotent.
	Pass()
}

// IsKeyOrderKey reports whether key is the context key under which a delivered
// message's context answers its KeyOrder.
func IsKeyOrderKey(key any) bool { return key == keyOrderKey{} }

// KeyOrderFrom returns the KeyOrder the context of a delivered message answers, and
// whether it answers one (see SubscribeOptions.KeyConcurrency).
func KeyOrderFrom(ctx context.Context) (KeyOrder, bool) {
	k, ok := ctx.Value(keyOrderKey{}).(KeyOrder)
	return k, ok
}

// Errors a transport returns, to be matched with errors.Is.
var (
	// ErrClosed: the transport was closed.
	ErrClosed = errors.New("transport closed")
	// ErrInvalidOption: a URL parameter, Config field or argument is not valid.
	ErrInvalidOption = errors.New("invalid option")
	// ErrUnknownScheme: no transport is registered for the URL's scheme.
	ErrUnknownScheme = errors.New("unknown URL scheme")
	// ErrUnknownTopic: the topic does not exist (Reader.ReadAll).
	ErrUnknownTopic = errors.New("unknown topic")
	// ErrNoRecord: no message at that position (RecordReader.ReadAt).
	ErrNoRecord = errors.New("no record at that position")
	// ErrMessageTooLarge: a message is larger than the transport accepts (Kafka:
	// max_message_bytes, or a topic's max.message.bytes). Publish fails with it at
	// once; publishing the message again cannot succeed.
	ErrMessageTooLarge = errors.New("message too large")
)

// DeadLetterHeadroom is how many bytes a transport with a message size limit keeps
// free beyond it for the headers the client adds when it dead-letters a message
// (reason, origin, attempts, times): a message marked as a dead letter (it carries
// metadata.DeadLetterReason) may be up to this much larger than the limit, and topics
// the transport creates take messages that large, so every message a subscription
// accepted can be dead-lettered. The client keeps what it adds within it.
const DeadLetterHeadroom = 32 << 10
