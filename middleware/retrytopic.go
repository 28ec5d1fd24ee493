package middleware

import (
	"fmt"
	"maps"
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
	// Now returns the current time (for the failure times, the attempts' durations and
	// their events' At); nil means time.Now.
	Now func() time.Time
	// Events hears every attempt and every retry, as in RetryConfig.
	Events Reporter
}

// RetryTopic retries without holding back the messages behind a failed one
// (unordered retries): it publishes a copy of the failed message to the retry topic of
// its next attempt, with metadata.Attempt, metadata.RetryDue (now plus the backoff),
// metadata.FirstFailure and the original record's position set, and acks the original
// only once that publish succeeded. A consumer of the retry topic wraps its handler in
// WaitDue, then in RetryTopic again for the retries after that. When no retry is left,
// or the error is Permanent, the error is returned for DeadLetter. When the publish
// fails, the error wraps ErrRetryPublish and the message is redelivered.
//
// The attempt is reported (EventProcessed or EventFailed), and a retry (EventRetried,
// with the retry topic as Destination), to Events. An error that wraps ErrRedeliver is
// no attempt, as in Retry: returned at once, not reported, and the message is
// redelivered.
func RetryTopic(cfg RetryTopicConfig) (message.HandlerMiddleware, error) {
	if cfg.Publisher == nil || cfg.Topic == nil || cfg.MaxRetries < 0 {
		return nil, fmt.Errorf("middleware: %w: RetryTopic needs a Publisher, a Topic and MaxRetries of at least 0", transport.ErrInvalidOption)
	}
	pol := newPolicy(cfg.MaxRetries, cfg.Backoff, cfg.ShouldRetry, cfg.Now, cfg.Events)
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			attempt := metadata.AttemptOf(msg.Metadata.Get(metadata.Attempt))
			msg.Metadata.Set(metadata.Attempt, strconv.Itoa(attempt))
			produced, err := pol.attempt(h, msg, attempt)
			if err == nil {
				return produced, nil
			}
			if redeliver(err) {
				return nil, err
			}
			again, wait, at := pol.failed(msg, attempt, err)
			if !again {
				return nil, err
			}
			next := message.NewMessage(msg.UUID, msg.Payload)
			next.Metadata = maps.Clone(msg.Metadata)
			next.Metadata.Set(metadata.Attempt, strconv.Itoa(attempt+1))
			next.Metadata.Set(metadata.RetryDue, metadata.FormatTime(at.Add(wait)))
			if p, o, ok := origin(msg); ok {
				next.Metadata.Set(metadata.OriginPartition, p)
				next.Metadata.Set(metadata.OriginOffset, o)
			}
			next.SetContext(msg.Context())
			topic := cfg.Topic(attempt)
			if perr := cfg.Publisher.Publish(topic, next); perr != nil {
				return nil, fmt.Errorf("%w %q (message stays unacked): %w; handler error: %w", ErrRetryPublish, topic, perr, err)
			}
			report(cfg.Events, msg.Context(), Event{Kind: EventRetried, Attempt: attempt, Duration: wait, Err: err, Message: msg, Destination: topic})
			return nil, nil
		}
	}, nil
}

// origin returns where msg's original record is: the origin it carries when it was
// moved to a retry topic or replayed, or else its own position.
func origin(msg *message.Message) (partition, offset string, ok bool) {
	if o := msg.Metadata.Get(metadata.OriginOffset); o != "" {
		return msg.Metadata.Get(metadata.OriginPartition), o, true
	}
	if pos, ok := transport.PositionFrom(msg.Context()); ok {
		return strconv.Itoa(int(pos.Partition)), strconv.FormatInt(pos.Offset, 10), true
	}
	return "", "", false
}

// WaitDueConfig configures WaitDue.
type WaitDueConfig struct {
	// Stop, when closed, ends a wait in progress, as in RetryConfig.
	Stop <-chan struct{}
	// MaxWait bounds every wait, whatever due time a message says (it may come from
	// outside); 0 means no bound.
	MaxWait time.Duration
	// Events hears of a wait cut short, as a failed attempt, when the attempts are
	// reported by a Retry or RetryTopic inside WaitDue (an Observation's Middleware
	// reports it otherwise). nil reports nothing.
	Events Reporter
}

// WaitDue holds a message from a retry topic until its metadata.RetryDue time, at most
// MaxWait from now. A wait cut short by Stop or by the message's context returns
// ErrInterrupted, so the message is redelivered and waits again; it is reported to
// Events as a failed attempt. A message without a
// due time, or with one that does not parse, passes at once.
func WaitDue(cfg WaitDueConfig) (message.HandlerMiddleware, error) {
	if cfg.MaxWait < 0 {
		return nil, fmt.Errorf("middleware: %w: WaitDue with MaxWait %v", transport.ErrInvalidOption, cfg.MaxWait)
	}
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			v := msg.Metadata.Get(metadata.RetryDue)
			if due, ok := metadata.ParseTime(v); ok {
				wait := time.Until(due)
				if cfg.MaxWait > 0 {
					wait = min(wait, cfg.MaxWait)
				}
				start := time.Now()
				if err := sleep(msg, wait, cfg.Stop); err != nil {
					err = fmt.Errorf("waiting for the retry due at %s: %w", v, err)
					if cfg.Events != nil && leavesAttempts(cfg.Events) {
						cfg.Events.Report(msg.Context(), Event{Kind: EventFailed, Attempt: metadata.AttemptOf(msg.Metadata.Get(metadata.Attempt)),
							Duration: time.Since(start), Err: err, Message: msg})
					}
					return nil, err
				}
			}
			return h(msg)
		}
	}, nil
}
