package pubsub

import (
	"context"
	"fmt"
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
	deadLetterTopic string
}

// DeadLetterTopicName returns the default dead-letter topic of a subscription:
// "<topic>.<group>.dlq". Each group has its own, so a replay reaches only the group
// that failed the message.
func DeadLetterTopicName(topic, group string) string { return topic + "." + group + ".dlq" }

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
	s := subscription{topic: t.name, group: group, deadLetterTopic: DeadLetterTopicName(t.name, group)}
	for _, opt := range opts {
		if opt != nil {
			opt(&s)
		}
	}
	handle := func(msg *message.Message) ([]*message.Message, error) {
		m, err := Decode(t, msg)
		if err != nil {
			return nil, err
		}
		m.CorrelationID = CorrelationID(msg.Context())
		return nil, h(msg.Context(), m)
	}
	return c.subscribe(s, handle)
}

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
	if err := p.Provision(ctx, s.topic, s.deadLetterTopic); err != nil {
		return fmt.Errorf("pubsub: Subscribe(%q, %q): %w", s.topic, s.group, err)
	}
	return nil
}

// subscribe adds the handler of s to the router, wrapped in the client's chain.
func (c *Client) subscribe(s subscription, handle message.HandlerFunc) error {
	chained, err := c.chain(s, handle)
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
	if c.subs[name] {
		c.mu.Unlock()
		return fmt.Errorf("pubsub: %w: topic %q already has a handler in group %q on this client", ErrInvalidOption, s.topic, s.group)
	}
	c.subs[name] = true
	c.router.AddConsumerHandler(name, s.topic, transport.GroupSubscriber(c.tr, s.group), func(msg *message.Message) error {
		_, err := chained(msg)
		return err
	})
	started := c.started
	c.mu.Unlock()

	c.logger.Debug("pubsub: subscribed", "topic", s.topic, "group", s.group, "dead_letter_topic", s.deadLetterTopic)
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
