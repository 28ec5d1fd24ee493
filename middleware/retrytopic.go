package middleware

import (
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/transport"
)

// ErrRetryPublish is wrapped by the error returned when a failed message could not be
// moved to its retry topic. The message must be redelivered, not dead-lettered;
// DeadLetter passes it through.
var ErrRetryPublish error = &redeliverError{"cannot publish to the retry topic"}

// RetryTopicConfig configures RetryTopic.
type RetryTopicConfig struct {
	// Publisher receives the retries. Required.
	Publisher message.Publisher
	// Topic names the retry topic of the retry to come (1-based). Required. One topic
	// per retry keeps every topic's waits equal, so its messages fall due in order.
	Topic func(retry int) string
	// MaxRetries, Backoff and ShouldRetry are as in RetryConfig.
	MaxRetries  int
	Backoff     Backoff
	ShouldRetry func(error) bool
	// OnRetry, when set, is called once the retry is published.
	OnRetry func(msg *message.Message, err error, retry int, wait time.Duration)
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// RetryTopic retries without holding back the messages behind a failed one
// (unordered retries): it publishes a copy of the failed message to the retry topic of
// its next attempt, with metadata.Attempt, metadata.RetryDue (now plus the backoff)
// and metadata.FirstFailure set, and acks the original only once that publish
// succeeded. A consumer of the retry topic wraps its handler in WaitDue, then in
// RetryTopic again for the retries after that. When no retry is left, or the error is
// Permanent, the error is returned for DeadLetter. When the publish fails, the error
// wraps ErrRetryPublish and the message is redelivered.
func RetryTopic(cfg RetryTopicConfig) (message.HandlerMiddleware, error) {
	if cfg.Publisher == nil || cfg.Topic == nil {
		return nil, fmt.Errorf("middleware: %w: RetryTopic needs a Publisher and a Topic", transport.ErrInvalidOption)
	}
	pol := newPolicy(cfg.MaxRetries, cfg.Backoff, cfg.ShouldRetry, cfg.Now)
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			attempt := metadata.AttemptOf(msg.Metadata.Get(metadata.Attempt))
			msg.Metadata.Set(metadata.Attempt, strconv.Itoa(attempt))
			produced, err := h(msg)
			if err == nil {
				return produced, nil
			}
			again, wait, at := pol.failed(msg, attempt, err)
			if !again {
				return nil, err
			}
			retry := attempt
			next := message.NewMessage(msg.UUID, msg.Payload)
			for k, v := range msg.Metadata {
				next.Metadata.Set(k, v)
			}
			next.Metadata.Set(metadata.Attempt, strconv.Itoa(attempt+1))
			next.Metadata.Set(metadata.RetryDue, at.Add(wait).UTC().Format(time.RFC3339Nano))
			if pos, ok := transport.PositionFrom(msg.Context()); ok && next.Metadata.Get(metadata.OriginOffset) == "" {
				next.Metadata.Set(metadata.OriginPartition, strconv.Itoa(int(pos.Partition)))
				next.Metadata.Set(metadata.OriginOffset, strconv.FormatInt(pos.Offset, 10))
			}
			next.SetContext(msg.Context())
			topic := cfg.Topic(retry)
			if perr := cfg.Publisher.Publish(topic, next); perr != nil {
				return nil, fmt.Errorf("%w %q (message stays unacked): %w; handler error: %w", ErrRetryPublish, topic, perr, err)
			}
			if cfg.OnRetry != nil {
				cfg.OnRetry(msg, err, retry, wait)
			}
			return nil, nil
		}
	}, nil
}

// WaitDue holds a message from a retry topic until its metadata.RetryDue time. A wait
// cut short by stop or by the message's context returns ErrInterrupted, so the message
// is redelivered and waits again. A message without a due time passes at once.
func WaitDue(stop <-chan struct{}) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			if v := msg.Metadata.Get(metadata.RetryDue); v != "" {
				if due, err := time.Parse(time.RFC3339Nano, v); err == nil {
					if err := sleep(msg, time.Until(due), stop); err != nil {
						return nil, fmt.Errorf("waiting for the retry due at %s: %w", v, err)
					}
				}
			}
			return h(msg)
		}
	}
}
