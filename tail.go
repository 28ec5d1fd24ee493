package pubsub

import (
	"context"
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/transport"
)

// Lag returns, for each partition of topic, where group stands (Committed, -1 when it
// never committed) and the partition's end (End), read from the transport, so it
// works from any process (the CLI's lag). The transport must implement
// transport.GroupLagger (memory and Kafka do). A topic that does not exist is an error
// wrapping ErrUnknownSubscription.
func (c *Client) Lag(ctx context.Context, topic, group string) ([]transport.PartitionStats, error) {
	l, ok := c.tr.(transport.GroupLagger)
	if !ok {
		return nil, fmt.Errorf("pubsub: %w: this transport cannot report a group's lag (it does not implement transport.GroupLagger)", ErrInvalidOption)
	}
	stats, err := l.GroupLag(ctx, topic, group)
	if errors.Is(err, transport.ErrUnknownTopic) {
		return nil, fmt.Errorf("pubsub: %w: topic %q does not exist", ErrUnknownSubscription, topic)
	}
	if err != nil {
		return nil, fmt.Errorf("pubsub: lag of %q in group %q: %w", topic, group, err)
	}
	return stats, nil
}

// Tail calls fn with every message published to topic from now on (or, fromStart,
// every message the topic holds first), raw as the transport delivers it, without a
// consumer group: it moves no group's position. It returns when ctx is done (nil) or
// fn returns an error (that error). The CLI's tail uses it.
func (c *Client) Tail(ctx context.Context, topic string, fromStart bool, fn func(*message.Message) error) error {
	if err := validName("topic", topic); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sub, err := c.tr.Subscribe(ctx, topic, transport.SubscribeOptions{FromEnd: !fromStart})
	if err != nil {
		return fmt.Errorf("pubsub: tail %q: %w", topic, err)
	}
	defer func() {
		cancel()
		for m := range sub.Messages() {
			m.Nack()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-sub.Messages():
			if !ok {
				return nil
			}
			err := fn(m)
			m.Ack()
			if err != nil {
				return err
			}
		}
	}
}
