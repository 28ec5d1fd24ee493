package pubsub

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/transport"
)

// SubscribeOption configures one subscription.
type SubscribeOption func(*subscription)

// subscription is one (topic, group) pair and what its chain needs to know.
type subscription struct {
	topic           string
	group           string
	delivery        *Delivery // WithDelivery's, or nil for the client's default
	permanentPanics bool      // WithPermanentPanics
	deadLetterTopic string
}

// WithPermanentPanics makes a panic in the handler a permanent failure: it is
// dead-lettered at once instead of retried under the Delivery policy. Use it for
// handlers whose panics come from the message (a nil field, an index out of range)
// rather than from the moment.
func WithPermanentPanics() SubscribeOption {
	return func(s *subscription) { s.permanentPanics = true }
}

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

// topics returns every topic a subscription consumes or publishes to.
func (s subscription) topics() []string {
	ts := []string{s.topic, s.deadLetterTopic, ReplayTopicName(s.topic, s.group)}
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
// permanent failure. One client may hold one handler per (topic, group). Subscribe is
// safe for concurrent use.
//
// On a transport that manages topics (Kafka), Subscribe first makes sure the topic and
// the subscription's dead-letter topic exist and are as durable as the transport
// requires, and returns that error if not.
func Subscribe[T any](c *Client, t Topic[T], group string, h Handler[T], opts ...SubscribeOption) error {
	if err := t.validate(); err != nil {
		return err
	}
	if err := validName("group", group); err != nil {
		return err
	}
	if h == nil {
		return fmt.Errorf("pubsub: %w: Subscribe(%q, %q) with a nil handler", ErrInvalidOption, t.name, group)
	}
	s := subscription{topic: t.name, group: group}
	for _, opt := range opts {
		if opt != nil {
			opt(&s)
		}
	}
	if s.delivery == nil {
		d := c.opts.delivery
		s.delivery = &d
	}
	if err := s.delivery.validate(); err != nil {
		return err
	}
	s.deadLetterTopic = s.delivery.DeadLetterTopic
	if s.deadLetterTopic == "" {
		s.deadLetterTopic = DeadLetterTopicName(t.name, group)
	}
	for _, name := range s.topics() {
		if len(name) > maxTopicName {
			return fmt.Errorf("pubsub: %w: Subscribe(%q, %q): the subscription's topic %q is longer than Kafka's %d characters; use a shorter topic or group name",
				ErrInvalidOption, t.name, group, name, maxTopicName)
		}
	}
	limit := c.opts.maxPayload
	handle := func(msg *message.Message) ([]*message.Message, error) {
		if limit > 0 && len(msg.Payload) > limit {
			return nil, Permanent(fmt.Errorf("%w: message %s on %q has %d bytes, the limit is %d",
				ErrPayloadTooLarge, msg.UUID, t.name, len(msg.Payload), limit))
		}
		m, err := Decode(t, msg)
		if err != nil {
			return nil, err
		}
		m.CorrelationID = CorrelationID(msg.Context())
		return nil, h(msg.Context(), m)
	}
	return c.subscribe(s, handle)
}

// maxTopicName is Kafka's longest topic name; the subscription's own topics
// (topic.group.retry.n and so on) must fit it too.
const maxTopicName = 249

// provisionTimeout bounds the topic checks Subscribe makes on transports that need
// them.
const provisionTimeout = 30 * time.Second

// provision makes the topics of s exist, with the durability the transport requires,
// when the transport manages topics (Kafka): the topic and its dead-letter topic.
func (c *Client) provision(s subscription) error {
	p, ok := c.tr.(transport.Provisioner)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), provisionTimeout)
	defer cancel()
	if err := p.Provision(ctx, s.topics()...); err != nil {
		return fmt.Errorf("pubsub: Subscribe(%q, %q): %w", s.topic, s.group, err)
	}
	return nil
}

// feed is one topic a subscription's handler consumes: the topic itself, its replay
// topic, and with Unordered delivery its retry topics. The subscription's own topics
// are consumed under a consumer group of their own name, so that on Kafka they do not
// share (and rebalance) the group of the subscription's main topic.
type feed struct {
	topic, group string
	handle       message.HandlerFunc
}

func (c *Client) feeds(s subscription, handle message.HandlerFunc) ([]feed, error) {
	main, err := c.chain(s, handle, false)
	if err != nil {
		return nil, err
	}
	replay := ReplayTopicName(s.topic, s.group)
	fs := []feed{{s.topic, s.group, main}, {replay, replay, main}}
	if s.delivery.Ordering == Unordered && s.delivery.Retry > 0 {
		due, err := c.chain(s, handle, true)
		if err != nil {
			return nil, err
		}
		for n := 1; n <= s.delivery.Retry; n++ {
			t := RetryTopicName(s.topic, s.group, n)
			fs = append(fs, feed{t, t, due})
		}
	}
	return fs, nil
}

// subscribe adds the handlers of s to the router, wrapped in the client's chain.
func (c *Client) subscribe(s subscription, handle message.HandlerFunc) error {
	feeds, err := c.feeds(s, handle)
	if err != nil {
		return err
	}
	if err := c.provision(s); err != nil {
		return err
	}
	name := s.topic + "/" + s.group

	c.mu.Lock()
	if c.closed.Load() || c.stopping {
		c.mu.Unlock()
		return fmt.Errorf("pubsub: Subscribe(%q, %q): client is shutting down: %w", s.topic, s.group, ErrClosed)
	}
	if _, dup := c.subs[name]; dup {
		c.mu.Unlock()
		return fmt.Errorf("pubsub: %w: topic %q already has a handler in group %q on this client", ErrInvalidOption, s.topic, s.group)
	}
	c.subs[name] = s
	for _, f := range feeds {
		c.router.AddConsumerHandler(f.topic+"/"+f.group, f.topic, transport.GroupSubscriber(c.tr, f.group), func(msg *message.Message) error {
			_, err := f.handle(msg)
			return err
		})
	}
	started := c.started
	c.mu.Unlock()

	c.logger.Debug("pubsub: subscribed", "topic", s.topic, "group", s.group, "dead_letter_topic", s.deadLetterTopic,
		"retry", s.delivery.Retry, "ordering", s.delivery.Ordering.String())
	if !started {
		return nil
	}
	// Run has begun; the router accepts RunHandlers only once it is running.
	select {
	case <-c.router.Running():
	case <-c.runDone:
		return fmt.Errorf("pubsub: Subscribe(%q, %q): %w", s.topic, s.group, ErrClosed)
	}
	if err := c.router.RunHandlers(c.runCtx); err != nil {
		return fmt.Errorf("pubsub: Subscribe(%q, %q): %w", s.topic, s.group, err)
	}
	return nil
}
