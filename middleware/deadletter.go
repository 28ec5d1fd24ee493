package middleware

import (
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/transport"
)

// DeadLetterConfig configures DeadLetter.
type DeadLetterConfig struct {
	// Publisher receives dead letters. Required.
	Publisher message.Publisher
	// Topic is the dead-letter topic. Required.
	Topic string
	// SourceTopic and Group are recorded in each dead letter
	// (metadata.DeadLetterTopic, metadata.DeadLetterGroup). On a plain Watermill router
	// SourceTopic defaults to the handler's subscribe topic.
	SourceTopic string
	Group       string
	// OnDeadLetter, when set, is called after a dead letter was published, with the
	// dead letter and the error that caused it. It must not modify them.
	OnDeadLetter func(dead *message.Message, cause error)
	// Now returns the current time; nil means time.Now. Tests set it.
	Now func() time.Time
}

// DeadLetter publishes a message that its handler failed to the dead-letter topic and
// acks it, so that one bad message neither blocks the messages behind it nor is lost.
// Place it outside the retry middleware: the error it sees is final, either because
// retries are exhausted or because the error is permanent (see Permanent).
//
// The dead letter has the original payload byte for byte, the original metadata and
// id, and the metadata.DeadLetter* keys: source topic, group, partition and offset
// where the transport has them, attempts, the error text cut at
// metadata.MaxReasonBytes, first and last failure times.
//
// An error is not dead-lettered, but returned so that the message is nacked and
// redelivered, when the message's context ended or the error wraps ErrRedeliver (a
// shutdown cut a retry wait short, a retry could not be published),
// or when publishing the dead letter fails: a message is never acked without being
// handled or dead-lettered.
func DeadLetter(cfg DeadLetterConfig) (message.HandlerMiddleware, error) {
	if cfg.Publisher == nil || cfg.Topic == "" {
		return nil, fmt.Errorf("middleware: %w: DeadLetter needs a Publisher and a Topic", transport.ErrInvalidOption)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			produced, err := h(msg)
			if err == nil {
				return produced, nil
			}
			if msg.Context().Err() != nil || errors.Is(err, ErrRedeliver) {
				return nil, err // cut short by a shutdown: redeliver, do not dead-letter
			}
			dead := deadLetterOf(msg, err, cfg, now())
			if perr := cfg.Publisher.Publish(cfg.Topic, dead); perr != nil {
				return nil, fmt.Errorf("cannot publish dead letter to %q (message stays unacked): %w; handler error: %w", cfg.Topic, perr, err)
			}
			if cfg.OnDeadLetter != nil {
				cfg.OnDeadLetter(dead, err)
			}
			return nil, nil
		}
	}, nil
}

func deadLetterOf(msg *message.Message, cause error, cfg DeadLetterConfig, now time.Time) *message.Message {
	dead := message.NewMessage(msg.UUID, msg.Payload)
	for k, v := range msg.Metadata {
		dead.Metadata.Set(k, v)
	}
	dead.SetContext(msg.Context())

	source := cfg.SourceTopic
	if source == "" {
		source = message.SubscribeTopicFromCtx(msg.Context())
	}
	stamp := now.UTC().Format(time.RFC3339Nano)
	first := msg.Metadata.Get(metadata.FirstFailure)
	if first == "" {
		first = stamp
	}
	attempts := metadata.AttemptOf(msg.Metadata.Get(metadata.Attempt))
	set := dead.Metadata.Set
	set(metadata.DeadLetterTopic, source)
	set(metadata.DeadLetterGroup, cfg.Group)
	set(metadata.DeadLetterMessageID, msg.UUID)
	set(metadata.DeadLetterAttempts, strconv.Itoa(attempts))
	set(metadata.DeadLetterReason, TruncateReason(cause.Error()))
	set(metadata.DeadLetterPermanent, strconv.FormatBool(IsPermanent(cause)))
	set(metadata.DeadLetterFirstFailure, first)
	set(metadata.DeadLetterLastFailure, stamp)
	if p, o := msg.Metadata.Get(metadata.OriginPartition), msg.Metadata.Get(metadata.OriginOffset); o != "" {
		// Moved to a retry topic or replayed: point at the original record.
		set(metadata.DeadLetterPartition, p)
		set(metadata.DeadLetterOffset, o)
	} else if pos, ok := transport.PositionFrom(msg.Context()); ok {
		set(metadata.DeadLetterPartition, strconv.Itoa(int(pos.Partition)))
		set(metadata.DeadLetterOffset, strconv.FormatInt(pos.Offset, 10))
	}
	return dead
}

// TruncateReason cuts an error text to metadata.MaxReasonBytes at a UTF-8 boundary,
// ending it with "…" when it was cut.
func TruncateReason(s string) string {
	const ellipsis = "…"
	if len(s) <= metadata.MaxReasonBytes {
		return s
	}
	cut := metadata.MaxReasonBytes - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
