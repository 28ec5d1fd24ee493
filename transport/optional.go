// Optional interfaces: what some transports do beyond Transport, which the client uses
// when they are there.

package transport

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"
)

// AsyncPublisher is implemented by transports that can take a message without waiting
// for it to be stored (Kafka's producer batches them; the memory transport stores them
// at once). The client falls back to its own bounded queue over Publish for transports
// without it.
type AsyncPublisher interface {
	// PublishAsync queues msg for topic and returns once it is queued, blocking while
	// the transport's queue is full until ctx is done (then done gets ctx's error).
	// Messages of one key queued by one goroutine are stored in the order queued. done
	// is called exactly once, with nil once the message is stored or with the error
	// that prevented it; it may be called before PublishAsync returns, and may run on a
	// goroutine of the transport that serves other callbacks, so it must be quick and
	// must not publish synchronously. Once queued, the message is no longer tied to
	// ctx's cancellation. The rules of Transport.Publish about the message apply.
	PublishAsync(ctx context.Context, topic string, msg *message.Message, done func(error))
	// Flush waits until every message queued so far is stored or failed, or ctx is
	// done.
	Flush(ctx context.Context) error
}

// HandlerSubscriber is implemented by transports that can run a subscription's
// handler on workers of their own: the worker that takes a message from a partition
// runs the handler and settles the message by its result, so no message crosses a
// channel to another goroutine and back. The client's engine subscribes this way
// where it can (the memory and Kafka transports), and through Subscribe's channel
// otherwise.
type HandlerSubscriber interface {
	// SubscribeHandler subscribes as Subscribe does, under the same options and
	// rules, but calls handle for each message handed out instead of sending it on
	// Messages (which delivers nothing and closes when the subscription ends). A nil
	// error acks the message, an error nacks it; handle must not Ack or Nack it
	// itself, nor panic. handle runs on as many workers at once as the options hand
	// messages out (Concurrency per partition, plus one for each message that waits,
	// see Waiter). When the Drain of a revoke or of the subscription's end runs out,
	// the calls still running are no longer waited for, and their results count for
	// nothing (the messages are handled again, as after a late ack): the caller waits
	// for its own calls.
	SubscribeHandler(ctx context.Context, topic string, opts SubscribeOptions, handle func(*message.Message) error) (Subscription, error)
}

// Provisioner is implemented by transports whose topics must exist before use (Kafka).
// The client calls Provision when a subscription is added, for the subscription's
// topic and for the retry and dead-letter topics it may publish to, so that a missing
// or under-replicated topic is reported by Subscribe rather than by the first failing
// message.
type Provisioner interface {
	// Provision makes sure every topic exists and is as durable as the transport is
	// configured to require. It is idempotent and safe for concurrent use.
	Provision(ctx context.Context, topics ...string) error
}

// Reader is implemented by transports that can read what a topic holds without a
// consumer group: the client lists dead letters with it.
type Reader interface {
	// ReadAll returns the messages topic holds now, oldest first within each
	// partition, each with its Position in its context. It does not wait for more
	// messages and moves no group's position. For a topic that does not exist it
	// returns an error wrapping ErrUnknownTopic.
	ReadAll(ctx context.Context, topic string) ([]*message.Message, error)
}

// TopicLister is implemented by transports that can list their topics: the client
// finds with it the retry topics a subscription had under an earlier Delivery, to
// drain them.
type TopicLister interface {
	// Topics returns the names of the topics that start with prefix, sorted.
	Topics(ctx context.Context, prefix string) ([]string, error)
}

// GroupLagger is implemented by transports that can tell a consumer group's committed
// position and the end of each partition of a topic, from any process: the CLI's lag.
type GroupLagger interface {
	// GroupLag returns, for each partition of topic, the group's committed position
	// (Committed, -1 when the group never committed) and the partition's end (End).
	// For a topic that does not exist it returns an error wrapping ErrUnknownTopic.
	GroupLag(ctx context.Context, topic, group string) ([]PartitionStats, error)
}

// RecordReader is implemented by transports that can read one record at its position
// without reading the rest of its topic: the client reads one dead letter with it.
type RecordReader interface {
	// ReadAt returns the message at offset in partition of topic, with its Position
	// in its context. It moves no group's position and does not wait for a record
	// that is not there yet. For a topic that does not exist it returns an error
	// wrapping ErrUnknownTopic; for a position that holds no message (beyond the end,
	// before the start, or a record that is not a message) an error wrapping
	// ErrNoRecord.
	ReadAt(ctx context.Context, topic string, partition int32, offset int64) (*message.Message, error)
}

// GroupMember is implemented by subscriptions whose consumer group can refuse them
// (Kafka): the client shows the refusal in its Health.
type GroupMember interface {
	// GroupError returns why the subscription is not a member of its group now, such
	// as a group whose members share no partition assignment strategy with it
	// (Kafka's INCONSISTENT_GROUP_PROTOCOL); nil while it is a member, before it first
	// tries to join, or when it consumes without a group. It is safe for concurrent
	// use.
	GroupError() error
}

// MessageLimiter is implemented by transports whose topics limit message sizes
// (Kafka): the client checks with it, when a subscription is added, that a dead letter
// of any message the subscription may have to dead-letter fits the dead-letter topic.
type MessageLimiter interface {
	// MessageLimit returns the size in bytes of the largest message topic takes from
	// any producer (0 when unknown), and the largest this transport publishes to it
	// (a dead letter, marked by metadata.DeadLetterReason, may exceed that by up to
	// DeadLetterHeadroom). It knows the topics provisioned so far; it does no I/O and
	// is safe for concurrent use.
	MessageLimit(topic string) (anyProducer, ours int)
}
