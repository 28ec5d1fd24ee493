package pubsub

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/internal/engine"
	"github.com/pubsubkit/pubsub/middleware"
	"github.com/pubsubkit/pubsub/transport"
)

// SubscribeOption configures one subscription in Subscribe.
type SubscribeOption func(*subscription)

// subscription is one (topic, group) pair and what its chain needs to know.
type subscription struct {
	topic           string
	group           string
	delivery        *Delivery // WithDelivery's, or nil for the client's default
	permanentPanics bool      // WithPermanentPanics
	knative         bool      // WithKnativeDeadLetters
	letters         bool      // the topic is a dead-letter topic: IsDeadLetterTopic or ReadsDeadLetters
	deadLetterTopic string
	feeds           []feed
	run             runner // what runs it, once registered
	// check says whether a payload decodes as the subscription's type, for a replay
	// with an edited payload.
	check func(payload []byte) error
	batch *batchOptions // WithBatch's, or nil
}

// WithDelivery sets the subscription's delivery policy, replacing the client's
// default (WithDefaultDelivery) as a whole.
func WithDelivery(d Delivery) SubscribeOption {
	return func(s *subscription) { s.delivery = &d }
}

// WithPermanentPanics makes a panic in the handler a permanent failure: it is
// dead-lettered at once instead of retried under the Delivery policy. Use it for
// handlers whose panics come from the message (a nil field, an index out of range)
// rather than from the moment.
func WithPermanentPanics() SubscribeOption {
	return func(s *subscription) { s.permanentPanics = true }
}

// WithKnativeDeadLetters writes the subscription's dead letters as CloudEvents with
// Knative's error extensions, as a Knative broker writes them to its dead-letter
// sink: ce_knativeerrordest, ce_knativeerrorcode (504 for a timed-out attempt, 422
// for a permanent failure, 500 otherwise) and ce_knativeerrordata (the reason cut to
// at most 1,024 bytes at a UTF-8 boundary, as Knative cuts it, then base64). Where
// Knative's ce_knativeerrordest is the URL of the subscriber it failed to deliver to,
// ours is "pubsub:<topic>/<group>": a subscription has no URL. A binary-mode event
// keeps its ce_ attributes; a structured-mode event gets the extensions in its
// envelope (and a time if it had none); a message that is not a CloudEvent becomes
// one (ce_id its id). Every binary-mode letter has a ce_time (the event's, else the
// publish time, else the time of dead-lettering) and a content-type (else
// application/octet-stream). The
// pubsub_dlq_ keys are written as for every dead letter, so DeadLetters, Replay and
// Discard work unchanged.
func WithKnativeDeadLetters() SubscribeOption {
	return func(s *subscription) { s.knative = true }
}

// ReadsDeadLetters marks the subscription's topic as a dead-letter topic, for one
// whose name does not end in ".dlq" (a Delivery.DeadLetterTopic of another name).
// The handler of a dead-letter topic sees the pubsub_dlq_* keys in Message.Metadata
// (on any other topic they are dropped as forged), and every letter: one whose payload
// does not decode as the subscription's type reaches it too, with Payload the zero
// value, RawPayload the bytes and DecodeError why.
func ReadsDeadLetters() SubscribeOption {
	return func(s *subscription) { s.letters = true }
}

// IsDeadLetterTopic reports whether Subscribe treats topic as a dead-letter topic
// without ReadsDeadLetters: its name ends in ".dlq", as DeadLetterTopicName's do.
func IsDeadLetterTopic(topic string) bool { return strings.HasSuffix(topic, ".dlq") }

// DeadLetterTopicName returns the default dead-letter topic of a subscription:
// "<topic>.<group>.dlq". Each group has its own, so a replay reaches only the group
// that failed the message.
func DeadLetterTopicName(topic, group string) string { return topic + "." + group + ".dlq" }

// RetryTopicName returns the topic an Unordered subscription moves a message to for
// its retry n (1-based): "<topic>.<group>.retry.<n>". One topic per retry keeps the
// waits in one topic equal, so its messages fall due in the order they arrive.
func RetryTopicName(topic, group string, retry int) string {
	return topic + "." + group + ".retry." + strconv.Itoa(retry)
}

// ReplayTopicName returns the topic that replayed dead letters of a subscription go
// to: "<topic>.<group>.replay", consumed by that subscription's handler only.
func ReplayTopicName(topic, group string) string { return topic + "." + group + ".replay" }

// feed is one topic a subscription's handler consumes. The subscription's own topics
// are consumed under a consumer group of their own name, so that on Kafka they do not
// share (and rebalance) the group of the subscription's main topic.
type feed struct {
	kind         middleware.Feed
	topic, group string
	retry        int // the retry a retry topic holds
}

// topics returns every topic a subscription consumes or publishes to.
func (s *subscription) topics() []string {
	ts := []string{s.topic, s.deadLetterTopic, ResolutionTopicName(s.deadLetterTopic), ReplayTopicName(s.topic, s.group)}
	if s.delivery.Ordering == Unordered {
		for n := 1; n <= s.delivery.Retry; n++ {
			ts = append(ts, RetryTopicName(s.topic, s.group, n))
		}
	}
	return ts
}

// Subscribe registers h for the messages of topic t in consumer group group. Every
// group receives every message of the topic; the clients that subscribe with one group
// share its messages. Consumption starts with Run (at once if Run is running).
//
// A message whose payload cannot be decoded never reaches h: it is dead-lettered as a
// permanent failure, except on a dead-letter topic (IsDeadLetterTopic,
// ReadsDeadLetters), where h gets it with Message.DecodeError set so that no letter
// escapes the program watching them. One client may hold one handler per (topic, group). Subscribe is
// safe for concurrent use. It refuses, with an error wrapping ErrInvalidOption, a
// Delivery the transport cannot honour: Concurrency above 1 on a transport without
// Capabilities.Concurrency, Ordered delivery (the default) on one without
// Capabilities.Ordered (gochannel: subscribe Unordered).
//
// On a transport that manages topics (Kafka), Subscribe first makes sure the topic,
// the subscription's retry and replay topics and its dead-letter topic exist and are
// as durable as the transport requires, and returns that error if not.
func Subscribe[T any](c *Client, t Topic[T], group string, h Handler[T], opts ...SubscribeOption) error {
	s, feeds, err := newSubscription(c, t, group, h, opts)
	if err != nil {
		return err
	}
	return c.register(s, func() (runner, error) { return c.engine.Add(feeds) })
}

// newSubscription checks Subscribe's arguments and makes the subscription and its
// feeds (see prepare) around its innermost handler: the payload limit, decode and h.
// It refuses WithBatch, which only SubscribeBatch takes.
func newSubscription[T any](c *Client, t Topic[T], group string, h Handler[T], opts []SubscribeOption) (*subscription, []engine.Feed, error) {
	return subscriptionOf(c, t, group, "Subscribe", h == nil, opts, func(s *subscription) (func(*message.Message, *Message[T]) error, error) {
		if s.batch != nil {
			return nil, fmt.Errorf("pubsub: %w: Subscribe(%q, %q) with WithBatch: batches are for SubscribeBatch", ErrInvalidOption, t.name, group)
		}
		return func(msg *message.Message, m *Message[T]) error { return h(msg.Context(), m) }, nil
	})
}

// subscriptionOf is newSubscription for Subscribe and SubscribeBatch (call names
// which): it checks the arguments, applies opts, asks inner for the function that
// each decoded message goes to, with its Watermill message (inner may refuse the
// options), and makes the subscription and its feeds.
func subscriptionOf[T any](c *Client, t Topic[T], group, call string, nilHandler bool, opts []SubscribeOption,
	inner func(s *subscription) (func(*message.Message, *Message[T]) error, error)) (*subscription, []engine.Feed, error) {
	if err := t.validate(); err != nil {
		return nil, nil, err
	}
	if err := validName("group", group); err != nil {
		return nil, nil, err
	}
	if nilHandler {
		return nil, nil, fmt.Errorf("pubsub: %w: %s(%q, %q) with a nil handler", ErrInvalidOption, call, t.name, group)
	}
	s := &subscription{topic: t.name, group: group, check: func(payload []byte) error {
		var v T
		return t.codec.Unmarshal(payload, &v)
	}}
	for _, opt := range opts {
		if opt != nil {
			opt(s)
		}
	}
	h, err := inner(s)
	if err != nil {
		return nil, nil, err
	}
	feeds, err := c.prepare(s, decodeStage(t, c.opts.maxPayload, s, h))
	if err != nil {
		return nil, nil, err
	}
	return s, feeds, nil
}

// closedOr returns err, wrapping ErrClosed as well when the client has begun to
// close: a call that Close interrupted says so, whatever its transport said.
func (c *Client) closedOr(err error) error {
	if c.publishing() || errors.Is(err, ErrClosed) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrClosed, err)
}

// maxTopicName is Kafka's longest topic name; the subscription's own topics
// (topic.group.retry.n and so on) must fit it too.
const maxTopicName = 249

// provisionTimeout bounds the topic checks Subscribe makes on transports that need
// them.
const provisionTimeout = 30 * time.Second

// check completes s with the client's defaults and refuses what the client or its
// transport cannot do.
func (c *Client) check(s *subscription) error {
	if s.delivery == nil {
		d := c.opts.delivery
		s.delivery = &d
	}
	if err := s.delivery.validate(); err != nil {
		return err
	}
	if err := s.checkCapabilities(c.tr.Capabilities()); err != nil {
		return err
	}
	s.letters = s.letters || IsDeadLetterTopic(s.topic)
	s.deadLetterTopic = s.delivery.DeadLetterTopic
	if s.deadLetterTopic == "" {
		s.deadLetterTopic = DeadLetterTopicName(s.topic, s.group)
	}
	for _, name := range s.topics() {
		if len(name) > maxTopicName {
			return fmt.Errorf("pubsub: %w: Subscribe(%q, %q): the subscription's topic %q is longer than Kafka's %d characters; use a shorter topic or group name",
				ErrInvalidOption, s.topic, s.group, name, maxTopicName)
		}
	}
	return nil
}

// leftoverRetryTopics returns feeds for the retry topics the subscription had under an
// earlier Delivery (more retries, or Unordered where it is now Ordered), so that the
// messages waiting in them are still delivered, under the policy the subscription has
// now: a message past its last retry is dead-lettered if it fails once more. A
// transport that cannot list its topics has none to drain.
func (c *Client) leftoverRetryTopics(s *subscription) ([]feed, error) {
	lister, ok := c.tr.(transport.TopicLister)
	if !ok {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), provisionTimeout)
	defer cancel()
	prefix := RetryTopicName(s.topic, s.group, 0)
	prefix = prefix[:len(prefix)-1] // "<topic>.<group>.retry."
	names, err := lister.Topics(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("pubsub: Subscribe(%q, %q): listing its retry topics: %w", s.topic, s.group, err)
	}
	var feeds []feed
	for _, name := range names {
		n, err := strconv.Atoi(strings.TrimPrefix(name, prefix))
		if err != nil || n < 1 || n > MaxDeliveryRetry || RetryTopicName(s.topic, s.group, n) != name {
			continue // not one of ours
		}
		if s.delivery.Ordering == Unordered && n <= s.delivery.Retry {
			continue // a feed already
		}
		feeds = append(feeds, feed{kind: middleware.FeedRetry, topic: name, group: name, retry: n})
	}
	return feeds, nil
}

// prepare checks s against the client and its transport, provisions its topics and
// returns its feeds, each with the client's chain around handle.
func (c *Client) prepare(s *subscription, handle message.HandlerFunc) ([]engine.Feed, error) {
	if err := c.check(s); err != nil {
		return nil, err
	}
	if p, ok := c.tr.(transport.Provisioner); ok {
		ctx, cancel := context.WithTimeout(context.Background(), provisionTimeout)
		err := p.Provision(ctx, s.topics()...)
		cancel()
		if err != nil {
			return nil, c.closedOr(fmt.Errorf("pubsub: Subscribe(%q, %q): %w", s.topic, s.group, err))
		}
		c.checkDeadLetterRoom(s)
	}
	replay := ReplayTopicName(s.topic, s.group)
	s.feeds = []feed{{kind: middleware.FeedTopic, topic: s.topic, group: s.group}, {kind: middleware.FeedReplay, topic: replay, group: replay}}
	if s.delivery.Ordering == Unordered {
		for n := 1; n <= s.delivery.Retry; n++ {
			t := RetryTopicName(s.topic, s.group, n)
			s.feeds = append(s.feeds, feed{kind: middleware.FeedRetry, topic: t, group: t, retry: n})
		}
	}
	leftover, err := c.leftoverRetryTopics(s)
	if err != nil {
		return nil, c.closedOr(err)
	}
	s.feeds = append(s.feeds, leftover...)
	feeds := make([]engine.Feed, len(s.feeds))
	for i := range s.feeds {
		f := &s.feeds[i]
		chained, err := c.chain(s, f, handle)
		if err != nil {
			return nil, err
		}
		feeds[i] = engine.Feed{Topic: f.topic, Handler: func(msg *message.Message) error {
			_, err := chained(msg)
			return err
		}, Options: transport.SubscribeOptions{
			Group:          f.group,
			Concurrency:    s.handOut(c.tr.Capabilities().Concurrency),
			Unordered:      s.delivery.Ordering == Unordered,
			KeyConcurrency: s.keyConcurrency(c.tr.Capabilities().Concurrency),
			Drain:          c.opts.drainTimeout,
		}}
	}
	return feeds, nil
}

// runner runs a subscription: the engine (Subscribe) or a Watermill Router
// (SubscribeOnRouter).
type runner interface {
	Health(stallAfter time.Duration) engine.Health
	Pause()
	Resume()
}

// register adds s to the client's subscriptions, with the runner start returns; start
// runs outside the client's lock, while the name is taken.
func (c *Client) register(s *subscription, start func() (runner, error)) error {
	name := s.topic + "/" + s.group
	c.mu.Lock()
	if c.state.get() != stateNew && c.state.get() != stateRunning {
		c.mu.Unlock()
		return fmt.Errorf("pubsub: Subscribe(%q, %q): client is shutting down: %w", s.topic, s.group, ErrClosed)
	}
	_, dup := c.subs[name]
	if _, starting := c.starting[name]; dup || starting {
		c.mu.Unlock()
		return fmt.Errorf("pubsub: %w: topic %q already has a handler in group %q on this client", ErrInvalidOption, s.topic, s.group)
	}
	c.starting[name] = struct{}{}
	c.mu.Unlock()
	run, err := start()
	c.mu.Lock()
	delete(c.starting, name)
	if err == nil && c.state.get() != stateNew && c.state.get() != stateRunning {
		// Close began while start ran: the subscription would never run.
		if es, ok := run.(*engine.Sub); ok {
			c.engine.Remove(es)
		}
		err = fmt.Errorf("client is shutting down: %w", ErrClosed)
	}
	if err == nil {
		s.run = run
		c.subs[name] = s
	}
	c.mu.Unlock()
	if err != nil {
		return c.closedOr(fmt.Errorf("pubsub: Subscribe(%q, %q): %w", s.topic, s.group, err))
	}
	c.opts.logger.Debug("pubsub: subscribed", "topic", s.topic, "group", s.group, "dead_letter_topic", s.deadLetterTopic,
		"retry", s.delivery.Retry, "ordering", s.delivery.Ordering.String(), "concurrency", s.delivery.Concurrency)
	return nil
}
