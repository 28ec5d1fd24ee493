package pubsub

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/internal/engine"
	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/middleware"
	"github.com/pubsubkit/pubsub/transport"
)

// BatchHandler handles a batch of a subscription's messages in one call (see
// SubscribeBatch). Returning nil acks every message of the batch. Failed(m, err), or
// errors.Join of several, fails those messages alone; any other error fails the whole
// batch.
type BatchHandler[T any] func(ctx context.Context, ms []*Message[T]) error

// MaxBatch is the largest batch WithBatch accepts.
const MaxBatch = 10000

// maxBatchHandOut bounds the messages of one partition a batch subscription holds at
// once ((Delivery.Concurrency + 1) × its batch size): each is a handler goroutine.
const maxBatchHandOut = 2 * MaxBatch

// batchOptions is what WithBatch sets.
type batchOptions struct {
	max  int
	wait time.Duration
}

// WithBatch makes each call of a SubscribeBatch handler take at most max messages,
// waiting at most wait after the batch's first message for more (0: hand over what
// has arrived at once). Without it SubscribeBatch takes batches of at most 100,
// waiting at most 100 ms. Subscribe and SubscribeOnRouter refuse it with
// ErrInvalidOption, as SubscribeBatch refuses max outside 1..MaxBatch, a negative
// wait, or batches that would hold more than 20,000 messages of a partition at once
// ((Delivery.Concurrency + 1) × max: the batches handled and the one filling).
func WithBatch(max int, wait time.Duration) SubscribeOption {
	return func(s *subscription) { s.batch = &batchOptions{max: max, wait: wait} }
}

// defaultBatch is SubscribeBatch's batch without WithBatch.
var defaultBatch = batchOptions{max: 100, wait: 100 * time.Millisecond}

// checkBatch refuses a batch of more than one message on a transport that hands out
// one message at a time.
func (s *subscription) checkBatch(caps transport.Capabilities) error {
	if s.batch != nil && s.batch.max > 1 && !caps.Concurrency {
		return fmt.Errorf("pubsub: %w: SubscribeBatch(%q, %q): WithBatch(%d, ...), but this transport hands out one message at a time per subscription (its Capabilities lack Concurrency); use WithBatch(1, 0)",
			ErrInvalidOption, s.topic, s.group, s.batch.max)
	}
	if s.batch != nil && caps.Concurrency && s.handOut(true) > maxBatchHandOut {
		return fmt.Errorf("pubsub: %w: SubscribeBatch(%q, %q): WithBatch(%d, ...) with Delivery.Concurrency %d holds %d messages of a partition at once, more than %d; use smaller or fewer batches",
			ErrInvalidOption, s.topic, s.group, s.batch.max, s.delivery.Concurrency, s.handOut(true), maxBatchHandOut)
	}
	return nil
}

// handOut is how many messages of one partition the transport may hand out at once:
// Delivery.Concurrency, or for a batch subscription one batch more than it handles at
// once, so that the next batch fills while the others are handled. A transport that
// hands out one message at a time (concurrent false) gets batches of one, one at a
// time.
func (s *subscription) handOut(concurrent bool) int {
	if s.batch == nil || !concurrent {
		return s.delivery.Concurrency
	}
	return (max(s.delivery.Concurrency, 1) + 1) * s.batch.max
}

// keyConcurrency is how many messages of one key the transport may hand out at once
// (transport.SubscribeOptions.KeyConcurrency): for an Ordered batch subscription, one
// batch of them, so that a batch may hold several of a key (the Batcher keeps their
// order) and a key, which is in one batch at a time, never holds more of the
// partition's hand-out than one batch: the other keys keep the rest, also while the
// key's messages wait behind an in-place retry; otherwise one.
func (s *subscription) keyConcurrency(concurrent bool) int {
	if s.batch == nil || !concurrent || s.delivery.Ordering == Unordered {
		return 0
	}
	return s.batch.max
}

// failedError is what Failed returns: err, for message m alone.
type failedError struct {
	m   any // the *Message[T]
	id  string
	err error
}

func (e *failedError) Error() string { return fmt.Sprintf("message %s failed: %v", e.id, e.err) }
func (e *failedError) Unwrap() error { return e.err }

// Failed returns an error that fails message m of a batch alone, with err as its
// reason: a batch handler returns it, or errors.Join of several, to send those
// messages through retries and dead-lettering under the Delivery policy as single
// messages would go (Permanent(err) dead-letters m at once), while the batch's other
// messages are acked and not handled again. A nil err fails m with "failed in its
// batch". Outside a batch handler's return it is an ordinary error.
func Failed[T any](m *Message[T], err error) error {
	if err == nil {
		err = errors.New("failed in its batch")
	}
	id := ""
	if m != nil {
		id = m.ID
	}
	return &failedError{m: m, id: id, err: err}
}

// SubscribeBatch registers h for the messages of topic t in consumer group group, as
// Subscribe does, with many messages per call: a batch holds at most WithBatch's max
// messages and waits at most its wait after its first message for more; it never
// waits while the client drains or the first message's partition is revoked (it is
// handed over with what it has). At most Delivery.Concurrency batches are handled at
// once. Delivery.Timeout bounds each call of h (an attempt of the batch), from the
// call's start: h's context ends Timeout after it, and the messages it failed after
// that fail with middleware.ErrAttemptTimeout; the time a message waits for its batch
// does not count.
//
// Every message of a batch goes through the subscription's chain on its own, as it
// would under Subscribe: its payload is decoded (one that does not decode is
// dead-lettered alone and never reaches h, except on a dead-letter topic, where it
// reaches h with Message.DecodeError set, as under Subscribe), and it is committed, retried and
// dead-lettered by itself. h's outcome is given to each message:
//
//   - nil: every message succeeded and is acked;
//   - Failed(m, err), or errors.Join of several: those messages failed with their own
//     err and the others succeeded. Ordered: a failed message is retried in place, and
//     h is called again with it (and whatever other messages arrived by then), never
//     with the messages that succeeded; Unordered: it moves to the retry topics; once
//     its retries are exhausted, or at once for Permanent(err), it is dead-lettered
//     with err as its reason;
//   - any other error, or a panic: the whole batch failed, and is retried as a batch
//     under the policy. Ordered: after the backoff its messages come back together and
//     h is called with exactly them, in their order (and the held-back messages of
//     their keys after them, see below); Unordered: each goes through the retry topics
//     as a single message and is batched again with whatever is due with it. A message
//     whose retries are exhausted is dead-lettered with the batch's error as its
//     reason.
//
// Ordered delivery keeps the order of each key (messages without a key are not held
// back by keys): a batch may hold several messages of one key, and a key's messages
// meet h in offset order, within a batch and across batches (a key is in one batch at
// a time; its later messages wait for that batch to finish). While a failed message
// waits for its in-place retry, no later message of its key succeeds: the later
// messages of its key in that batch get no outcome, whatever h said of them (they are
// not failed attempts: they count no retry and are never dead-lettered for another
// message's failure), and they and any later message of the key wait; they are
// handed to h again after the failed one, in order, in its retry batch (as room
// allows) or the batches after it once it succeeded, or go on once it is
// dead-lettered. A message that failed for good (retries exhausted, or Permanent) is
// dead-lettered at once, with no retry wait, and the later messages of its key wait
// only until its dead letter is stored: those in its batch then keep h's outcomes
// (handled once) and the key goes on. Should storing the dead letter fail, the message
// is nacked and comes again, and they wait for it as behind a retry (handed to h again
// after it), so that none is acked before it. The key's messages not yet handed out
// wait meanwhile (the transport hands out no more of a key while one of them waits
// for its retry), and the other keys go on: a key never holds more than one batch of
// the messages handed out. Messages that wait so when the drain begins or their
// partition is revoked are nacked and redelivered later, in order, as a redelivery:
// no failed attempt, no retry. On a transport that hands out one message
// of a key at a time (transport.SubscribeOptions.KeyConcurrency ignored), a batch
// holds one message of each key, with the same rules. Unordered delivery batches any
// messages together.
//
// Tracing: each call of h runs in a span of its own ("process <topic>", a new trace,
// messaging.batch.message_count set) linked to each message's producer span, with a
// "message_failed" event (messaging.message.id, exception.message) for each message
// failed alone; h's context is the context of the batch's first message within that
// span. Each message also keeps its own CONSUMER span, child of its producer span,
// with its attempts, retries and dead letter as events: the messaging conventions
// allow a per-message span beside a batch's process span, and it is the one that
// continues the message's trace and records its delivery. A batch of more than one
// message needs a transport with Capabilities.Concurrency.
func SubscribeBatch[T any](c *Client, t Topic[T], group string, h BatchHandler[T], opts ...SubscribeOption) error {
	var batcher *engine.Batcher[batchItem[T]]
	s, feeds, err := subscriptionOf(c, t, group, "SubscribeBatch", h == nil, opts, func(s *subscription) (func(*message.Message, *Message[T]) error, error) {
		if s.batch == nil {
			b := defaultBatch
			s.batch = &b
		}
		if s.batch.max < 1 || s.batch.max > MaxBatch || s.batch.wait < 0 {
			return nil, fmt.Errorf("pubsub: %w: SubscribeBatch(%q, %q): WithBatch(%d, %s): max must be between 1 and %d, wait not negative",
				ErrInvalidOption, t.name, group, s.batch.max, s.batch.wait, MaxBatch)
		}
		return func(msg *message.Message, m *Message[T]) error {
			ctx := msg.Context()
			delivery := middleware.DeliveryOf(ctx)
			return batcher.Do(ctx, delivery, batchItem[T]{m: m, msg: msg, id: batchItemID(delivery, msg),
				attempt: metadata.AttemptOf(msg.Metadata.Get(metadata.Attempt)), link: middleware.ProducerLink(msg)})
		}, nil
	})
	if err != nil {
		return err
	}
	for i := range feeds {
		// The Batcher hears how each message's chain ended: a key whose message failed
		// waits for it (engine.Batcher.Done).
		chain := feeds[i].Handler
		feeds[i].Handler = func(msg *message.Message) error {
			id := batchItemID(msg.Context(), msg)
			err := chain(msg)
			if _, keyed := id.(keyedItem); keyed {
				batcher.Done(id, err)
			}
			return err
		}
	}
	retries := s.delivery.Retry
	batcher = engine.NewBatcher(engine.BatchConfig[batchItem[T]]{Max: s.batch.max, Wait: s.batch.wait,
		Concurrency: s.delivery.Concurrency, Stop: c.engine.Draining(), Run: batchRunner(c, s, h),
		Ordered: s.delivery.Ordering != Unordered,
		// As middleware.Retry decides: not the last attempt, not Permanent.
		Retried: func(it batchItem[T], err error) bool { return it.attempt <= retries && !IsPermanent(err) },
		ID:      func(it batchItem[T]) any { return it.id },
		Held:    errHeldBack})
	return c.register(s, func() (runner, error) { return c.engine.Add(feeds) })
}

// batchItem is one message waiting in a batch: the attempt of msg (the same across
// its in-place attempts) decoded as m, with the link to its producer span.
type batchItem[T any] struct {
	m       *Message[T]
	msg     *message.Message
	id      any
	attempt int
	link    trace.Link
}

// batchItemID identifies a message across its attempts in place and, when its
// delivery context delivery answers a transport.KeyOrder, across its redeliveries
// within that delivery of its partition: its key's place and its offset.
func batchItemID(delivery context.Context, msg *message.Message) any {
	if k, ok := transport.KeyOrderFrom(delivery); ok {
		if pos, ok := transport.PositionFrom(delivery); ok {
			return keyedItem{key: k.Key(), offset: pos.Offset}
		}
	}
	return msg
}

// keyedItem is the id of a message of a key: see batchItemID.
type keyedItem struct {
	key    any
	offset int64
}

// errHeldBack is the outcome of a message held back behind an earlier message of its
// key (Ordered batches) when its partition is revoked or the drain begins before its
// turn: it is nacked and redelivered, in order.
var errHeldBack = fmt.Errorf("pubsub: held back behind an earlier message of its key that did not finish: %w", middleware.ErrRedeliver)

// batchRunner returns the function that handles one batch of s with h and gives each
// message its outcome.
func batchRunner[T any](c *Client, s *subscription, h BatchHandler[T]) func(context.Context, []batchItem[T]) ([]error, bool) {
	tracer := middleware.NewTracer(c.opts.tracerProvider)
	return func(ctx context.Context, items []batchItem[T]) ([]error, bool) {
		ms := make([]*Message[T], len(items))
		links := make([]trace.Link, 0, len(items))
		for i, it := range items {
			ms[i] = it.m
			if it.link.SpanContext.IsValid() {
				links = append(links, it.link)
			}
		}
		ctx, span := middleware.StartBatch(ctx, tracer, c.obs.system, s.topic, s.group, links, len(items))
		errs, whole, err := attemptBatch(ctx, h, ms, s.permanentPanics, s.delivery.Timeout)
		var failed func(yield func(string, error) bool)
		if !whole {
			failed = func(yield func(string, error) bool) {
				for i, e := range errs {
					if e != nil && !yield(ms[i].ID, e) {
						return
					}
				}
			}
		}
		middleware.EndBatch(span, err, failed)
		return errs, whole
	}
}

// attemptBatch is one attempt of a batch: h called with ms, within timeout (0: none)
// from now, as middleware.Timeout bounds the attempt of a single message; each
// message's outcome of h's error err. A message that failed after the timeout ran out
// fails with middleware.ErrAttemptTimeout.
func attemptBatch[T any](ctx context.Context, h BatchHandler[T], ms []*Message[T], permanentPanics bool, timeout time.Duration) (errs []error, whole bool, err error) {
	parent := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	err = callBatch(ctx, h, ms, permanentPanics)
	errs, whole = outcomes(ms, err)
	if err != nil && timeout > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) && parent.Err() == nil {
		for i, e := range errs {
			if e != nil && !errors.Is(e, middleware.ErrAttemptTimeout) {
				errs[i] = fmt.Errorf("%w after %v: %w", middleware.ErrAttemptTimeout, timeout, e)
			}
		}
	}
	return errs, whole, err
}

// callBatch calls h, turning a panic into a *middleware.PanicError (Permanent with
// WithPermanentPanics), a failure of the whole batch.
func callBatch[T any](ctx context.Context, h BatchHandler[T], ms []*Message[T], permanentPanics bool) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &middleware.PanicError{Value: r, Stack: debug.Stack()}
			if permanentPanics {
				err = Permanent(err)
			}
		}
	}()
	return h(ctx, ms)
}

// outcomes gives each message of a batch its outcome of err: nil for all when err is
// nil; each failed message its reason when err is made of Failed errors (through
// errors.Join and wrapping) of the batch's messages alone; else err for all (whole).
func outcomes[T any](ms []*Message[T], err error) (errs []error, whole bool) {
	errs = make([]error, len(ms))
	if err == nil {
		return errs, false
	}
	index := make(map[*Message[T]]int, len(ms))
	for i, m := range ms {
		index[m] = i
	}
	if failedOnly(err, func(f *failedError) bool {
		m, ok := f.m.(*Message[T])
		i, in := index[m]
		if !ok || !in {
			return false
		}
		errs[i] = joinReason(errs[i], f.err)
		return true
	}) {
		return errs, false
	}
	for i := range errs {
		errs[i] = err
	}
	return errs, true
}

// FailedIn returns why a batch handler that returned err failed message m of its
// batch, as SubscribeBatch reads err: nil when err is nil or is made of Failed errors
// of other messages only; m's reasons when err is made of Failed errors and some are
// m's; err itself otherwise (the whole batch failed).
func FailedIn[T any](err error, m *Message[T]) error {
	if err == nil {
		return nil
	}
	var reason error
	if failedOnly(err, func(f *failedError) bool {
		if f.m == any(m) {
			reason = joinReason(reason, f.err)
		}
		return true
	}) {
		return reason
	}
	return err
}

// joinReason adds err to the reasons a message failed with.
func joinReason(reasons, err error) error {
	if reasons == nil {
		return err
	}
	return errors.Join(reasons, err)
}

// failedOnly reports whether err is made of Failed errors only, calling found for each
// (it reports whether the message is one of the batch).
func failedOnly(err error, found func(*failedError) bool) bool {
	var f *failedError
	switch e := err.(type) {
	case *failedError:
		return found(e)
	case interface{ Unwrap() []error }:
		for _, inner := range e.Unwrap() {
			if !failedOnly(inner, found) {
				return false
			}
		}
		return len(e.Unwrap()) > 0
	default:
		if inner := errors.Unwrap(err); inner != nil && errors.As(err, &f) {
			return failedOnly(inner, found)
		}
		return false
	}
}
