package middleware

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/transport"
)

// ErrInterrupted is returned, wrapping the handler's last error, when a retry wait was
// cut short by a shutdown. The message must not be acked nor dead-lettered: it is
// redelivered once the consumer runs again. DeadLetter passes it through.
var ErrInterrupted error = &redeliverError{"retry wait interrupted by shutdown"}

// RetryConfig configures Retry.
type RetryConfig struct {
	// MaxRetries is how many times a failed message is handled again, after its
	// first attempt. 0 retries nothing.
	MaxRetries int
	// Backoff gives the wait before each retry; nil waits nothing.
	Backoff Backoff
	// ShouldRetry decides whether an error is worth another attempt; nil retries
	// every error except those marked Permanent.
	ShouldRetry func(error) bool
	// Stop, when closed, ends a wait in progress: the handler returns the last error
	// wrapped in ErrInterrupted, so the message is redelivered rather than lost.
	// Consumers close it when they shut down.
	Stop <-chan struct{}
	// Now returns the current time (for the failure times, the attempts' durations and
	// their events' At); nil means time.Now.
	Now func() time.Time
	// Events hears every attempt and every retry: the Observation of the Observe
	// stage around Retry, which then leaves the attempts to Retry. nil reports
	// nothing.
	Events Reporter
}

// Retry handles a failed message again in place, up to MaxRetries times with Backoff
// between attempts, so the messages behind it wait (ordered retries). Put Timeout
// inside it, so that each attempt gets a fresh deadline, and DeadLetter outside it, so
// that the error it finally returns is dead-lettered.
//
// The attempt number travels in metadata.Attempt (1 for the first delivery) and the
// time of the first failure in metadata.FirstFailure; an incoming message that already
// carries an attempt number (from a retry topic) continues the count, so the retries
// of all its deliveries add up to MaxRetries. A wait ends early when the message's
// context ends (its partition was revoked, its subscription ended) or Stop closes;
// the last error is then returned, wrapped in ErrInterrupted.
//
// Every attempt is reported (EventProcessed or EventFailed, with the handler's time)
// and every retry (EventRetried, with the wait) to Events. An error that wraps
// ErrRedeliver is no attempt: it is returned at once, neither reported nor retried,
// and the message is redelivered.
//
// Unlike Watermill's middleware.Retry, the delays follow Backoff exactly (retry n
// waits Backoff(n), whatever ShouldRetry does), and a Permanent error is returned at
// once.
func Retry(cfg RetryConfig) (message.HandlerMiddleware, error) {
	if cfg.MaxRetries < 0 {
		return nil, fmt.Errorf("middleware: %w: Retry with MaxRetries %d", transport.ErrInvalidOption, cfg.MaxRetries)
	}
	pol := newPolicy(cfg.MaxRetries, cfg.Backoff, cfg.ShouldRetry, cfg.Now, cfg.Events)
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			attempt := metadata.AttemptOf(msg.Metadata.Get(metadata.Attempt))
			for {
				msg.Metadata.Set(metadata.Attempt, strconv.Itoa(attempt))
				produced, err := pol.attempt(h, msg, attempt)
				if err == nil {
					return produced, nil
				}
				if redeliver(err) {
					return nil, err
				}
				if err := pol.retryWait(msg, attempt, err, cfg.Stop); err != nil {
					return nil, err
				}
				attempt++
			}
		}
	}, nil
}

// policy is what Retry and RetryTopic share: which errors are retried, how often,
// and after how long, and where attempts and retries are reported.
type policy struct {
	maxRetries  int
	backoff     Backoff
	shouldRetry func(error) bool
	now         func() time.Time
	events      Reporter
}

// newPolicy is the policy of a Retry or RetryTopic, which reports the attempts to
// events.
func newPolicy(maxRetries int, backoff Backoff, shouldRetry func(error) bool, now func() time.Time, events Reporter) policy {
	if shouldRetry == nil {
		shouldRetry = func(err error) bool { return !IsPermanent(err) }
	}
	if now == nil {
		now = time.Now
	}
	reportsAttempts(events)
	return policy{maxRetries, backoff, shouldRetry, now, events}
}

// attempt runs the handler once and reports how it went. An error that wraps
// ErrRedeliver is no attempt: the message was not handled (a batch gave it back
// unhandled, see pubsub.SubscribeBatch) and comes again, so nothing is reported and
// the caller returns the error as it is (redeliver reports it).
func (p policy) attempt(h message.HandlerFunc, msg *message.Message, attempt int) ([]*message.Message, error) {
	start := p.now()
	produced, err := h(msg)
	if redeliver(err) {
		return produced, err
	}
	p.reportAttempt(msg, attempt, start, err)
	return produced, err
}

// redeliver reports whether err means the message was not handled and must come
// again: it wraps ErrRedeliver.
func redeliver(err error) bool { return err != nil && errors.Is(err, ErrRedeliver) }

// reportAttempt is a function of its own so that attempt's frame, which is on the
// handler's stack, stays small.
func (p policy) reportAttempt(msg *message.Message, attempt int, start time.Time, err error) {
	kind := EventProcessed
	if err != nil {
		kind = EventFailed
	}
	end := p.now() // also the event's time: one clock reading, not two
	report(p.events, msg.Context(), Event{Kind: kind, Attempt: attempt, Duration: end.Sub(start), Err: err, Message: msg, At: end})
}

// retryWait decides what follows a failed attempt in place: nil once the wait before
// the next attempt is over; the error to return when there is no retry left, or when
// the wait was cut short.
func (p policy) retryWait(msg *message.Message, attempt int, err error, stop <-chan struct{}) error {
	again, wait, _ := p.failed(msg, attempt, err)
	if !again {
		return err
	}
	report(p.events, msg.Context(), Event{Kind: EventRetried, Attempt: attempt, Duration: wait, Err: err, Message: msg})
	resume := transport.Waiting(msg.Context()) // the wait holds back its own key only
	werr := sleep(msg, wait, stop)
	resume()
	if werr != nil {
		return fmt.Errorf("%w before retry %d: %w", werr, attempt, err)
	}
	return nil
}

// failed records that attempt of msg failed (metadata.FirstFailure, once) and says
// whether it is retried, after how long, and when it failed.
func (p policy) failed(msg *message.Message, attempt int, err error) (again bool, wait time.Duration, at time.Time) {
	at = p.now()
	if msg.Metadata.Get(metadata.FirstFailure) == "" {
		msg.Metadata.Set(metadata.FirstFailure, metadata.FormatTime(at))
	}
	if attempt > p.maxRetries || !p.shouldRetry(err) {
		return false, 0, at
	}
	if p.backoff != nil {
		wait = p.backoff(attempt)
	}
	return true, wait, at
}

// sleep waits d, or less when msg's context ends (its error is returned) or stop
// closes (ErrInterrupted).
func sleep(msg *message.Message, d time.Duration, stop <-chan struct{}) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-msg.Context().Done():
		return fmt.Errorf("%w: %w", ErrInterrupted, msg.Context().Err())
	case <-stop:
		return ErrInterrupted
	}
}
