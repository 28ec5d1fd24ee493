// Package memory is an in-process transport for unit tests and local runs. It behaves
// like a one-partition Kafka topic where a test would notice.
//
// # Semantics
//
//   - Consumer groups: every group receives every message of a topic once. A topic has
//     one partition, so one member of a group consumes it at a time, as on Kafka; the
//     other members stand by and take over, from the group's position, when it leaves.
//   - Order and concurrency: as transport.SubscribeOptions says. With Concurrency 1 a
//     group gets the messages in publish order, one in flight; with more, up to that
//     many at once, never two of one key unless Unordered (or up to KeyConcurrency,
//     in offset order, with a transport.KeyOrder in each context). A nacked message is
//     delivered again after Config.NackDelay, before the later messages of its key.
//   - Position: a group's position is the lowest offset it has not finished, kept for
//     the life of the transport, as a Kafka group keeps its committed offset; a
//     consumer that restarts redoes only the messages that were in flight.
//   - Retention: a topic keeps its messages in a log, so a group that subscribes late
//     starts from the oldest retained message, as a new Kafka group does with
//     auto.offset.reset=earliest. A topic holds at most Config.MaxRetained messages
//     and Config.MaxRetainedBytes bytes, and all topics together at most
//     Config.MaxBytes. To make room, the oldest messages that every group of their
//     topic has finished are dropped, and on a topic that no group consumes (a
//     dead-letter topic nobody reads) the oldest messages are dropped as Kafka's
//     retention would. A message that some group still has to consume is never
//     dropped: Publish waits up to Config.FullTimeout for room and then fails with
//     ErrTopicFull.
//   - A group that stops consuming for good holds its topic's messages back until the
//     topic fills; remove it with DeleteGroup.
//   - Payloads are kept as published, not copied: a publisher must not change a
//     message's payload or metadata after publishing it (see
//     transport.Transport.Publish), and a handler must not change the payload it
//     receives; each delivery gets metadata of its own. A typed publish that nothing
//     observes but metrics and span events arrives as a transport.Outgoing
//     (PublishOutgoing, PublishOutgoingAsync), without a Watermill message: its id,
//     key and header values are copied into one string, its payload kept.
//   - Nothing survives Close or the end of the process.
//
// # Why not Watermill's gochannel as it is
//
// gochannel gives every subscriber every message (no consumer groups), drops messages
// published before anyone subscribed unless Persistent, which keeps them all without
// bound, runs handlers concurrently and out of order by default, and redelivers a nack
// at once in a busy loop. Its one ordered mode, BlockPublishUntilSubscriberAck, blocks
// the publisher until the handler acks, so a handler that publishes to its own topic
// deadlocks. Those are the core of what this transport must do, so it keeps Watermill's
// message, ack and subscriber-channel model and replaces gochannel's delivery with a
// per-topic log, one position per group and the lanes of transport/internal/lane.
// gochannel itself is available as gochannel:// in the pubsub package.
package memory

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/internal/urlquery"
)

// Scheme is the URL scheme of this transport: memory://
const Scheme = "memory"

// Defaults for Config's zero fields.
const (
	DefaultMaxRetained      = 100_000
	DefaultMaxRetainedBytes = 64 << 20
	DefaultMaxBytes         = 256 << 20
	DefaultFullTimeout      = 5 * time.Second
	DefaultNackDelay        = 100 * time.Millisecond
	DefaultBuffer           = 256
	DefaultDrain            = 30 * time.Second
)

// ErrTopicFull is returned by Publish when a topic (or the transport as a whole) is
// full of messages that some group has not consumed yet and no room was made within
// Config.FullTimeout.
var ErrTopicFull = errors.New("memory: topic full")

// Config tunes the transport. The zero value uses the defaults.
type Config struct {
	// MaxRetained bounds how many messages a topic keeps. 0 means DefaultMaxRetained.
	MaxRetained int
	// MaxRetainedBytes bounds the payload and metadata bytes a topic keeps. 0 means
	// DefaultMaxRetainedBytes. A single message larger than this is refused with an
	// error wrapping transport.ErrMessageTooLarge, except a dead letter, which may be
	// transport.DeadLetterHeadroom larger (it then waits for an empty topic).
	MaxRetainedBytes int64
	// MaxBytes bounds the payload and metadata bytes of all topics together. 0 means
	// DefaultMaxBytes.
	MaxBytes int64
	// FullTimeout is how long Publish waits for room in a full topic before it returns
	// ErrTopicFull. 0 means DefaultFullTimeout; a negative value fails at once.
	FullTimeout time.Duration
	// NackDelay is the pause before a nacked message is delivered again. 0 means
	// DefaultNackDelay.
	NackDelay time.Duration
	// Buffer is how many messages a group's delivery holds ahead of its handlers. 0
	// means DefaultBuffer; it is at least the subscription's Concurrency.
	Buffer int
	// Drain is the default of SubscribeOptions.Drain: how long messages in flight when
	// a subscription ends may still be acked. 0 means DefaultDrain.
	Drain time.Duration
}

func (c Config) withDefaults() (Config, error) {
	var errs []error
	if c.MaxRetained < 0 || c.MaxRetainedBytes < 0 || c.MaxBytes < 0 || c.Buffer < 0 {
		errs = append(errs, fmt.Errorf("MaxRetained %d, MaxRetainedBytes %d, MaxBytes %d and Buffer %d must not be negative",
			c.MaxRetained, c.MaxRetainedBytes, c.MaxBytes, c.Buffer))
	}
	if c.NackDelay < 0 || c.Drain < 0 {
		errs = append(errs, fmt.Errorf("NackDelay %s and Drain %s must not be negative", c.NackDelay, c.Drain))
	}
	c.MaxRetained = cmp.Or(c.MaxRetained, DefaultMaxRetained)
	c.MaxRetainedBytes = cmp.Or(c.MaxRetainedBytes, DefaultMaxRetainedBytes)
	c.MaxBytes = cmp.Or(c.MaxBytes, DefaultMaxBytes)
	c.FullTimeout = cmp.Or(c.FullTimeout, DefaultFullTimeout)
	c.NackDelay = cmp.Or(c.NackDelay, DefaultNackDelay)
	c.Buffer = cmp.Or(c.Buffer, DefaultBuffer)
	c.Drain = cmp.Or(c.Drain, DefaultDrain)
	if c.MaxBytes < c.MaxRetainedBytes {
		errs = append(errs, fmt.Errorf("MaxBytes %d is below MaxRetainedBytes %d", c.MaxBytes, c.MaxRetainedBytes))
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("memory: %w: %w", transport.ErrInvalidOption, errors.Join(errs...))
	}
	return c, nil
}

// Transport is the in-process transport. It is safe for concurrent use.
type Transport struct {
	cfg Config

	// ctx ends every delivered message's context when the transport closes.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	topics map[string]*topic
	closed bool

	bytes atomic.Int64 // retained bytes of all topics
	// room is closed and replaced whenever messages are dropped or finished anywhere,
	// for publishers waiting for the transport-wide bound.
	roomMu  sync.Mutex
	room    chan struct{}
	waiters int

	wg sync.WaitGroup
}

var (
	_ transport.Transport         = (*Transport)(nil)
	_ transport.AsyncPublisher    = (*Transport)(nil)
	_ transport.OutgoingPublisher = (*Transport)(nil)
	_ transport.Reader            = (*Transport)(nil)
	_ transport.TopicLister       = (*Transport)(nil)
	_ transport.GroupLagger       = (*Transport)(nil)
)

// New returns an in-process transport configured by cfg.
func New(cfg Config) (*Transport, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Transport{cfg: cfg, ctx: ctx, cancel: cancel, topics: map[string]*topic{}, room: make(chan struct{})}, nil
}

// Open is the transport.OpenFunc for memory:// URLs. Parameters: max_retained,
// max_retained_bytes, max_bytes, full_timeout, nack_delay, buffer and drain, as in
// Config. Each call returns a new, independent transport.
func Open(_ context.Context, u *url.URL, _ transport.OpenOptions) (transport.Transport, error) {
	cfg, err := ParseURL(u)
	if err != nil {
		return nil, err
	}
	return New(cfg)
}

// ParseURL reads a memory:// URL into a Config.
func ParseURL(u *url.URL) (Config, error) {
	if u.Scheme != Scheme {
		return Config{}, fmt.Errorf("memory: %w: scheme %q is not %q", transport.ErrInvalidOption, u.Scheme, Scheme)
	}
	if u.Host != "" || (u.Path != "" && u.Path != "/") || u.User != nil || u.Opaque != "" || u.Fragment != "" {
		return Config{}, fmt.Errorf("memory: %w: a memory URL takes no host, user, path or fragment, only parameters (memory://?max_retained=1000)", transport.ErrInvalidOption)
	}
	q := urlquery.New(u)
	cfg := Config{
		MaxRetained:      q.Int("max_retained", 0),
		MaxRetainedBytes: int64(q.Int("max_retained_bytes", 0)),
		MaxBytes:         int64(q.Int("max_bytes", 0)),
		FullTimeout:      q.Duration("full_timeout", 0),
		NackDelay:        q.Duration("nack_delay", 0),
		Buffer:           q.Int("buffer", 0),
		Drain:            q.Duration("drain", 0),
	}
	if err := q.Err(); err != nil {
		return Config{}, fmt.Errorf("memory: %w", err)
	}
	if _, err := cfg.withDefaults(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Capabilities: consumer groups, order, per-key concurrency, retention; not
// persistent, one partition.
func (t *Transport) Capabilities() transport.Capabilities {
	return transport.Capabilities{MessagingSystem: "pubsubkit_memory", ConsumerGroups: true, Ordered: true,
		Concurrency: true, Retains: true}
}

// Publish appends messages to topic's log in order. It blocks only when the topic (or
// the transport) is full, for at most Config.FullTimeout or until the first message's
// context is done.
func (t *Transport) Publish(topicName string, messages ...*message.Message) error {
	tp, err := t.topic(topicName)
	if err != nil {
		return err
	}
	if len(messages) == 0 {
		return nil
	}
	ctx := messages[0].Context()
	for _, msg := range messages {
		if err := tp.append(ctx, newRecord(msg)); err != nil {
			return err
		}
	}
	return nil
}

// PublishAsync stores msg at once, as Publish does, and calls done before it
// returns: the memory transport has no queue.
func (t *Transport) PublishAsync(ctx context.Context, topicName string, msg *message.Message, done func(error)) {
	tp, err := t.topic(topicName)
	if err == nil {
		err = tp.append(ctx, newRecord(msg))
	}
	done(err)
}

// PublishOutgoing stores m as Publish stores a message, without a Watermill message;
// see transport.OutgoingPublisher. The payload is kept, as Publish keeps a message's.
func (t *Transport) PublishOutgoing(ctx context.Context, topicName string, m *transport.Outgoing) error {
	tp, err := t.topic(topicName)
	if err != nil {
		return err
	}
	return tp.append(ctx, newOutgoingRecord(m))
}

// PublishOutgoingAsync stores m at once, as PublishOutgoing does, and settles it before
// it returns.
func (t *Transport) PublishOutgoingAsync(ctx context.Context, topicName string, m *transport.Outgoing, done transport.Settler) {
	done.Settle(t.PublishOutgoing(ctx, topicName, m))
}

// Flush returns at once: PublishAsync stores every message before it returns.
func (t *Transport) Flush(context.Context) error { return nil }

// Subscribe joins group on topic; see transport.Transport.
func (t *Transport) Subscribe(ctx context.Context, topicName string, opts transport.SubscribeOptions) (transport.Subscription, error) {
	return t.subscribe(ctx, topicName, opts, nil)
}

// SubscribeHandler subscribes as Subscribe does, with handle run by the workers that
// take the messages; see transport.HandlerSubscriber.
func (t *Transport) SubscribeHandler(ctx context.Context, topicName string, opts transport.SubscribeOptions, handle func(*message.Message) error) (transport.Subscription, error) {
	if handle == nil {
		return nil, fmt.Errorf("memory: %w: SubscribeHandler needs a handler", transport.ErrInvalidOption)
	}
	return t.subscribe(ctx, topicName, opts, handle)
}

func (t *Transport) subscribe(ctx context.Context, topicName string, opts transport.SubscribeOptions, handle func(*message.Message) error) (transport.Subscription, error) {
	if opts.Concurrency < 0 || opts.Drain < 0 {
		return nil, fmt.Errorf("memory: %w: Concurrency %d and Drain %s must not be negative", transport.ErrInvalidOption, opts.Concurrency, opts.Drain)
	}
	tp, err := t.topic(topicName)
	if err != nil {
		return nil, err
	}
	return tp.subscribe(ctx, opts, handle), nil
}

// DeleteGroup forgets group's position on topic, so its unconsumed messages no longer
// hold the log back. It fails while the group has members.
func (t *Transport) DeleteGroup(topicName, group string) error {
	tp, err := t.topic(topicName)
	if err != nil {
		return err
	}
	return tp.deleteGroup(group)
}

// Close ends every subscription, waits for their messages in flight (up to their
// drain time) and for the transport's goroutines. Close is idempotent.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.cancel() // every waiter in topic.go also selects on t.ctx
	t.mu.Unlock()
	t.wg.Wait()
	return nil
}

func (t *Transport) topic(name string) (*topic, error) {
	if name == "" {
		return nil, fmt.Errorf("memory: %w: empty topic name", transport.ErrInvalidOption)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, fmt.Errorf("memory: %w", transport.ErrClosed)
	}
	tp, ok := t.topics[name]
	if !ok {
		tp = newTopic(t, name)
		t.topics[name] = tp
	}
	return tp, nil
}

// startWaiting registers a publisher waiting for room and returns the channel closed
// at the next change that may make room; stopWaiting ends the registration.
func (t *Transport) startWaiting() <-chan struct{} {
	t.roomMu.Lock()
	defer t.roomMu.Unlock()
	t.waiters++
	return t.room
}

func (t *Transport) stopWaiting() {
	t.roomMu.Lock()
	t.waiters--
	t.roomMu.Unlock()
}

// roomChanged returns the channel closed at the next change that may make room.
func (t *Transport) roomChanged() <-chan struct{} {
	t.roomMu.Lock()
	defer t.roomMu.Unlock()
	return t.room
}

// madeRoom wakes the publishers waiting for room, if there are any.
func (t *Transport) madeRoom() {
	t.roomMu.Lock()
	if t.waiters > 0 {
		close(t.room)
		t.room = make(chan struct{})
	}
	t.roomMu.Unlock()
}

// trimOthers drops droppable messages of other topics until the transport is under
// its bound by need bytes, and reports whether it is.
func (t *Transport) trimOthers(except *topic, need int64) bool {
	t.mu.Lock()
	others := make([]*topic, 0, len(t.topics))
	for _, tp := range t.topics {
		if tp != except {
			others = append(others, tp)
		}
	}
	t.mu.Unlock()
	for _, tp := range others {
		if t.bytes.Load()+need <= t.cfg.MaxBytes {
			return true
		}
		tp.trimFor(func() bool { return t.bytes.Load()+need <= t.cfg.MaxBytes })
	}
	return t.bytes.Load()+need <= t.cfg.MaxBytes
}

// ReadAll returns the messages topicName retains, oldest first, without touching any
// group's position. A topic no one has published to or subscribed to is unknown.
func (t *Transport) ReadAll(ctx context.Context, topicName string) ([]*message.Message, error) {
	tp, err := t.existing(topicName)
	if err != nil {
		return nil, err
	}
	tp.mu.Lock()
	defer tp.mu.Unlock()
	msgs := make([]*message.Message, len(tp.log))
	for i, r := range tp.log {
		msgs[i] = r.read(ctx)
	}
	return msgs, nil
}

// existing returns the topic named topicName, for a reader: an error when the
// transport is closed or the topic unknown.
func (t *Transport) existing(topicName string) (*topic, error) {
	t.mu.Lock()
	tp, ok := t.topics[topicName]
	closed := t.closed
	t.mu.Unlock()
	switch {
	case closed:
		return nil, fmt.Errorf("memory: %w", transport.ErrClosed)
	case !ok:
		return nil, fmt.Errorf("memory: topic %q: %w", topicName, transport.ErrUnknownTopic)
	}
	return tp, nil
}

// Topics returns the names of the topics that start with prefix, sorted.
func (t *Transport) Topics(_ context.Context, prefix string) ([]string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, fmt.Errorf("memory: %w", transport.ErrClosed)
	}
	var names []string
	for name := range t.topics {
		if strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// GroupLag returns group's committed position on topic and the topic's end; a group
// that never consumed it has position -1.
func (t *Transport) GroupLag(_ context.Context, topicName, group string) ([]transport.PartitionStats, error) {
	t.mu.Lock()
	tp, ok := t.topics[topicName]
	t.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("memory: topic %q: %w", topicName, transport.ErrUnknownTopic)
	}
	tp.mu.Lock()
	defer tp.mu.Unlock()
	p := transport.PartitionStats{Committed: -1, End: tp.end()}
	if g, ok := tp.groups[group]; ok {
		p.Committed = g.next
	}
	return []transport.PartitionStats{p}, nil
}
