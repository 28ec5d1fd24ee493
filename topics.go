package pubsub

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/pubsubkit/pubsub/transport"
)

// TopicExists reports whether topic exists on the transport, without creating it:
// the CLI checks with it that a topic it is asked to read is there. The transport
// must implement transport.TopicLister (memory and Kafka do).
func (c *Client) TopicExists(ctx context.Context, topic string) (bool, error) {
	if err := validName("topic", topic); err != nil {
		return false, err
	}
	l, ok := c.tr.(transport.TopicLister)
	if !ok {
		return false, fmt.Errorf("pubsub: %w: this transport cannot list its topics (it does not implement transport.TopicLister)", ErrInvalidOption)
	}
	names, err := l.Topics(ctx, topic)
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return false, err
		}
		return false, fmt.Errorf("pubsub: listing topics: %w", err)
	}
	return slices.Contains(names, topic), nil
}
