// Package memory is an in-process transport for unit tests and local runs. It behaves
// like a one-partition Kafka topic where a test would notice.
//
// # Semantics
//
//   - Consumer groups: every group receives every message of a topic once; members of
//     one group share its messages.
//   - Order: within a group, messages arrive in publish order with one in flight. A
//     nacked message is redelivered after Config.NackDelay, before the messages behind
//     it.
//   - Retention: a topic keeps its messages in a log, so a group that subscribes late
//     starts from the oldest retained message, as a new Kafka group does with
//     auto.offset.reset=earliest. The log holds at most Config.MaxRetained messages and
//     Config.MaxRetainedBytes bytes. When it is full, the oldest message is dropped only
//     if every group has consumed it; otherwise Publish waits up to Config.FullTimeout
//     for room and then fails with ErrTopicFull. A message is never dropped silently.
//   - A group keeps its position for the life of the transport, as a Kafka group keeps
//     its committed offset, so restarting a consumer loses nothing. A group that stops
//     consuming for good holds messages back until the topic fills; remove it with
//     DeleteGroup.
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
// per-topic log and one cursor per group.
package memory

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/transport"
)

// Scheme is the URL scheme of this transport: memory://
const Scheme = "memory"

// Defaults for Config's zero fields.
const (
	DefaultMaxRetained      = 100_000
	DefaultMaxRetainedBytes = 64 << 20
	DefaultFullTimeout      = 5 * time.Second
	DefaultNackDelay        = 100 * time.Millisecond
)

// ErrTopicFull is returned by Publish when a topic's log is full of messages that some
// group has not consumed yet (or that no group has subscribed to yet) and no room was
// made within Config.FullTimeout.
var ErrTopicFull = errors.New("memory: topic full")

// Config tunes the transport. The zero value uses the defaults.
type Config struct {
	// MaxRetained bounds how many messages a topic keeps. 0 means DefaultMaxRetained.
	MaxRetained int
	// MaxRetainedBytes bounds the payload and metadata bytes a topic keeps. 0 means
	// DefaultMaxRetainedBytes. A single message larger than this is refused.
	MaxRetainedBytes int64
	// FullTimeout is how long Publish waits for room in a full topic before it returns
	// ErrTopicFull. 0 means DefaultFullTimeout; a negative value fails at once.
	FullTimeout time.Duration
	// NackDelay is the pause before a nacked message is delivered again. 0 means
	// DefaultNackDelay.
	NackDelay time.Duration
}

func (c Config) withDefaults() (Config, error) {
	var errs []error
	if c.MaxRetained < 0 {
		errs = append(errs, fmt.Errorf("MaxRetained %d is negative", c.MaxRetained))
	}
	if c.MaxRetainedBytes < 0 {
		errs = append(errs, fmt.Errorf("MaxRetainedBytes %d is negative", c.MaxRetainedBytes))
	}
	if c.NackDelay < 0 {
		errs = append(errs, fmt.Errorf("NackDelay %s is negative", c.NackDelay))
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("memory: %w: %w", transport.ErrInvalidOption, errors.Join(errs...))
	}
	transport.SetDefault(&c.MaxRetained, DefaultMaxRetained)
	transport.SetDefault(&c.MaxRetainedBytes, DefaultMaxRetainedBytes)
	transport.SetDefault(&c.FullTimeout, DefaultFullTimeout)
	transport.SetDefault(&c.NackDelay, DefaultNackDelay)
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

	wg sync.WaitGroup
}

var _ transport.Transport = (*Transport)(nil)

// New returns an in-process transport configured by cfg.
func New(cfg Config) (*Transport, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Transport{cfg: cfg, ctx: ctx, cancel: cancel, topics: map[string]*topic{}}, nil
}

// Open is the transport.OpenFunc for memory:// URLs. Parameters: max_retained,
// max_retained_bytes, full_timeout and nack_delay, as in Config. Each call returns a
// new, independent transport.
func Open(_ context.Context, u *url.URL) (transport.Transport, error) {
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
	if u.Host != "" || (u.Path != "" && u.Path != "/") || u.User != nil {
		return Config{}, fmt.Errorf("memory: %w: a memory URL takes no host, user or path, only parameters (memory://?max_retained=1000)", transport.ErrInvalidOption)
	}
	q := transport.NewQuery(u)
	cfg := Config{
		MaxRetained:      q.Int("max_retained", 0),
		MaxRetainedBytes: int64(q.Int("max_retained_bytes", 0)),
		FullTimeout:      q.Duration("full_timeout", 0),
		NackDelay:        q.Duration("nack_delay", 0),
	}
	if err := q.Err(); err != nil {
		return Config{}, fmt.Errorf("memory: %w", err)
	}
	if _, err := cfg.withDefaults(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Capabilities: consumer groups, order, retention; not persistent, one partition.
func (t *Transport) Capabilities() transport.Capabilities {
	return transport.Capabilities{ConsumerGroups: true, Ordered: true, Retains: true}
}

// Publish appends messages to topic's log in order. It blocks only when the topic is
// full, for at most Config.FullTimeout or until the first message's context is done.
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

// SubscribeGroup joins group on topic; see transport.Transport.
func (t *Transport) SubscribeGroup(ctx context.Context, topicName, group string) (<-chan *message.Message, error) {
	tp, err := t.topic(topicName)
	if err != nil {
		return nil, err
	}
	return tp.subscribe(ctx, group), nil
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

// Close ends every subscription and waits for the transport's goroutines. Messages in
// flight are neither committed nor redelivered. Close is idempotent.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.cancel() // every waiter in topic.go also selects on closing()
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

// closing is done once Close has begun.
func (t *Transport) closing() <-chan struct{} { return t.ctx.Done() }

// ReadAll returns the messages topicName retains, oldest first, without touching any
// group's position.
func (t *Transport) ReadAll(ctx context.Context, topicName string) ([]*message.Message, error) {
	tp, err := t.topic(topicName)
	if err != nil {
		return nil, err
	}
	tp.mu.Lock()
	defer tp.mu.Unlock()
	msgs := make([]*message.Message, len(tp.log))
	for i, r := range tp.log {
		msgs[i] = r.message()
		msgs[i].SetContext(transport.WithPosition(ctx, transport.Position{Offset: r.offset}))
	}
	return msgs, nil
}

// MessagingSystem names this transport in telemetry (messaging.system).
func (t *Transport) MessagingSystem() string { return "pubsubkit_memory" }
