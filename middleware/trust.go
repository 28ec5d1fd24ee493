package middleware

import (
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/transport"
)

// Feed is what a topic a subscription consumes is for, as Trust sees it.
type Feed int

const (
	// FeedTopic is the subscription's topic, shared with every producer and group.
	FeedTopic Feed = iota
	// FeedReplay is the subscription's replay topic (its replayed dead letters).
	FeedReplay
	// FeedRetry is one of the subscription's retry topics.
	FeedRetry
)

// TrustConfig configures Trust.
type TrustConfig struct {
	Feed Feed
	// Retry is the retry a FeedRetry topic holds (1-based).
	Retry int
	// MaxWait bounds a FeedRetry message's due time from now: the wait of its retry
	// under the subscription's policy.
	MaxWait time.Duration
	// DeadLetters says the FeedTopic is a dead-letter topic, whose records carry the
	// dead-letter keys (pubsub_dlq_*) by right; on any other topic they are dropped.
	DeadLetters bool
}

// Trust keeps a subscription's bookkeeping honest: a record on the topic itself comes
// from any producer, so the keys only the subscription's own topics may carry
// (attempt, first failure, due time, origin, replayed) are dropped and it starts at
// attempt 1 with the full policy, and so are the dead-letter keys (pubsub_dlq_*) unless
// the topic is a dead-letter topic (DeadLetters); a record on retry topic n is at attempt n+1
// whatever it says, and due at most MaxWait from now; a replayed record starts at
// attempt 1. Put it outermost, before any stage reads those keys.
func Trust(cfg TrustConfig) (message.HandlerMiddleware, error) {
	if cfg.Feed < FeedTopic || cfg.Feed > FeedRetry || cfg.Feed == FeedRetry && cfg.Retry < 1 || cfg.MaxWait < 0 {
		return nil, fmt.Errorf("middleware: %w: Trust with feed %d, retry %d, max wait %s", transport.ErrInvalidOption, cfg.Feed, cfg.Retry, cfg.MaxWait)
	}
	attempt := strconv.Itoa(cfg.Retry + 1) // made once: a retry topic's attempt
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			md := msg.Metadata
			switch cfg.Feed {
			case FeedTopic:
				metadata.DropBookkeeping(md)
				if !cfg.DeadLetters {
					metadata.DropDeadLetterKeys(md)
				}
			case FeedReplay:
				delete(md, metadata.Attempt)
				delete(md, metadata.RetryDue)
				delete(md, metadata.FirstFailure)
			case FeedRetry:
				md[metadata.Attempt] = attempt
				if due, ok := metadata.ParseTime(md[metadata.RetryDue]); ok && time.Until(due) > cfg.MaxWait {
					md[metadata.RetryDue] = metadata.FormatTime(time.Now().Add(cfg.MaxWait))
				}
			}
			return h(msg)
		}
	}, nil
}
