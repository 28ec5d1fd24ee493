package middleware

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"time"

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
	// ReasonLimit bounds the reason, "…" included, in bytes; 0 means
	// metadata.MaxReasonBytes.
	ReasonLimit int
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Knative makes each dead letter a CloudEvent with Knative's error extensions
	// (metadata.KnativeErrorDest, KnativeErrorCode, KnativeErrorData), as a Knative
	// broker writes to its dead-letter sink, so that Knative tooling reads it.
	Knative bool
	// Logger, when set, hears at error level each message that was a dead letter
	// already (it carries metadata.DeadLetterReason: a consumer of a dead-letter topic
	// failed it) as it goes to Topic, a second-level dead-letter topic that nobody may
	// watch.
	Logger *slog.Logger
	// Events hears of each dead letter (EventDeadLettered); nil reports nothing.
	Events Reporter
}

// DeadLetter publishes a message that its handler failed to the dead-letter topic and
// acks it, so that one bad message neither blocks the messages behind it nor is lost.
// Place it outside the retry middleware: the error it sees is final, either because
// retries are exhausted or because the error is permanent (see Permanent).
//
// The dead letter has the original payload byte for byte, the original metadata and
// id, and the metadata.DeadLetter* keys: source topic, group, partition and offset
// where the transport has them, attempts, the error text cut at ReasonLimit (bytes
// that are not valid UTF-8 replaced by U+FFFD, metadata.ValidUTF8; so is the Knative
// error data made from it), first and last failure times. A message that was dead-lettered before (a dead letter whose own
// consumer failed it) keeps the first letter's keys (metadata.KeepOrigin),
// so its first reason and origin are not lost. Each dead letter is reported
// (EventDeadLettered) to Events.
//
// Every message a transport accepted fits its dead-letter topic with these keys
// (transport.DeadLetterHeadroom). Should the dead-letter topic still refuse the
// letter as too large, it is written without its payload, with
// metadata.DeadLetterPayloadDropped saying how large it was.
//
// An error is not dead-lettered, but returned so that the message is nacked and
// redelivered, when the message's context ended (its partition was revoked, its
// subscription ended) or the error wraps ErrRedeliver (a shutdown cut a retry wait
// short, a retry could not be published), or when publishing the dead letter fails: a
// message is never acked without being handled or dead-lettered.
func DeadLetter(cfg DeadLetterConfig) (message.HandlerMiddleware, error) {
	if cfg.Publisher == nil || cfg.Topic == "" || cfg.ReasonLimit < 0 || cfg.ReasonLimit > 0 && cfg.ReasonLimit < 16 {
		return nil, fmt.Errorf("middleware: %w: DeadLetter needs a Publisher, a Topic and a ReasonLimit of 0 (the default) or at least 16", transport.ErrInvalidOption)
	}
	if cfg.ReasonLimit == 0 {
		cfg.ReasonLimit = metadata.MaxReasonBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			produced, err := h(msg)
			if err == nil {
				return produced, nil
			}
			return nil, deadLetter(cfg, msg, err)
		}
	}, nil
}

// deadLetter publishes msg, which failed with err, as a dead letter, and returns nil
// once it is stored, or the error that makes msg come again.
func deadLetter(cfg DeadLetterConfig, msg *message.Message, err error) error {
	if msg.Context().Err() != nil || errors.Is(err, ErrRedeliver) {
		return err // cut short by a shutdown or a revoke: redeliver, do not dead-letter
	}
	dead := deadLetterOf(msg, err, cfg)
	if cfg.Knative {
		dest := KnativeDestination(dead.Metadata.Get(metadata.DeadLetterTopic), dead.Metadata.Get(metadata.DeadLetterGroup))
		if kerr := asKnativeDeadLetter(dead, dest, dead.Metadata.Get(metadata.DeadLetterReason), knativeCode(err)); kerr != nil {
			// the letter stays a plain dead letter: the failure is not hidden behind a format
			dead.Metadata.Set(metadata.DeadLetterReason, metadata.Reason(
				fmt.Errorf("%w (not written as a Knative dead letter: %w)", err, kerr), cfg.ReasonLimit-len("…")))
		}
	}
	perr := cfg.Publisher.Publish(cfg.Topic, dead)
	if errors.Is(perr, transport.ErrMessageTooLarge) && len(dead.Payload) > 0 {
		// The letter is over what the dead-letter topic takes (a record from another
		// producer above our limit, a topic made by hand with a smaller one): it goes
		// without its payload, which stays in the source topic where the letter says.
		dead.Metadata.Set(metadata.DeadLetterPayloadDropped, strconv.Itoa(len(dead.Payload)))
		dead.Payload = nil
		perr = cfg.Publisher.Publish(cfg.Topic, dead)
	}
	if perr != nil {
		return fmt.Errorf("cannot publish dead letter to %q (message stays unacked): %w; handler error: %w", cfg.Topic, perr, err)
	}
	if _, again := msg.Metadata[metadata.DeadLetterReason]; again && cfg.Logger != nil {
		cfg.Logger.Error("pubsub: a dead letter failed on its dead-letter topic and went to a second-level dead-letter topic",
			"topic", dead.Metadata.Get(metadata.DeadLetterTopic), "group", cfg.Group, "dead_letter_topic", cfg.Topic,
			"message_id", msg.UUID, "reason", dead.Metadata.Get(metadata.DeadLetterReason),
			"first_reason", dead.Metadata.Get(metadata.DeadLetterOriginPrefix+"reason"))
	}
	report(cfg.Events, msg.Context(), Event{Kind: EventDeadLettered, Attempt: metadata.AttemptOf(msg.Metadata.Get(metadata.Attempt)),
		Err: err, Message: dead, Destination: cfg.Topic})
	return nil
}

func deadLetterOf(msg *message.Message, cause error, cfg DeadLetterConfig) *message.Message {
	dead := message.NewMessage(msg.UUID, msg.Payload)
	dead.Metadata = maps.Clone(msg.Metadata)
	dead.SetContext(msg.Context())
	metadata.KeepOrigin(dead.Metadata)
	source := cfg.SourceTopic
	if source == "" {
		source = message.SubscribeTopicFromCtx(msg.Context())
	}
	stamp := metadata.FormatTime(cfg.Now())
	first := msg.Metadata.Get(metadata.FirstFailure)
	if first == "" {
		first = stamp
	}
	set := dead.Metadata.Set
	set(metadata.DeadLetterTopic, source)
	set(metadata.DeadLetterGroup, cfg.Group)
	set(metadata.DeadLetterMessageID, msg.UUID)
	set(metadata.DeadLetterAttempts, strconv.Itoa(metadata.AttemptOf(msg.Metadata.Get(metadata.Attempt))))
	set(metadata.DeadLetterReason, metadata.Reason(cause, cfg.ReasonLimit-len("…")))
	set(metadata.DeadLetterPermanent, strconv.FormatBool(IsPermanent(cause)))
	set(metadata.DeadLetterFirstFailure, first)
	set(metadata.DeadLetterLastFailure, stamp)
	delete(dead.Metadata, metadata.DeadLetterPartition)
	delete(dead.Metadata, metadata.DeadLetterOffset)
	if p, o, ok := origin(msg); ok {
		set(metadata.DeadLetterPartition, p)
		set(metadata.DeadLetterOffset, o)
	}
	return dead
}
