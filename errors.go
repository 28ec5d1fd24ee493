package pubsub

import (
	"errors"

	"github.com/pubsubkit/pubsub/internal/engine"
	"github.com/pubsubkit/pubsub/middleware"
	"github.com/pubsubkit/pubsub/transport"
)

// Errors returned by the client, to be matched with errors.Is. Transports return the
// same values, so one check covers both layers.
var (
	// ErrClosed: the client (or its transport) was closed.
	ErrClosed = transport.ErrClosed
	// ErrInvalidOption: an option, URL parameter, topic or group name, or argument is
	// not valid. The error text says which and why.
	ErrInvalidOption = transport.ErrInvalidOption
	// ErrUnknownScheme: Open was given a URL whose scheme no transport is registered
	// for. The error text lists the known schemes.
	ErrUnknownScheme = transport.ErrUnknownScheme
	// ErrDrainTimeout: handlers were still running when the drain timeout
	// (WithDrainTimeout) ran out; their contexts were cancelled and their messages will
	// be redelivered.
	ErrDrainTimeout = engine.ErrDrainTimeout
	// ErrAlreadyRunning: Run was called while the client was already running, or again
	// after it returned.
	ErrAlreadyRunning = errors.New("pubsub: Run called more than once")
	// ErrNotFlushed: Close could not store every message queued by PublishAsync or
	// PublishBatch within the drain timeout; each of those messages' done callback got
	// the error that failed it.
	ErrNotFlushed = errors.New("pubsub: queued messages not stored")
	// ErrUnknownSubscription: no such subscription: this client did not make it, and
	// its transport knows none by that topic and group.
	ErrUnknownSubscription = errors.New("unknown subscription") // wrapped as "pubsub: unknown subscription: ..."
	// ErrPayloadTooLarge: a payload is larger than WithMaxPayload allows. Publish
	// returns it; a consumer dead-letters such a message with it as the reason.
	ErrPayloadTooLarge = errors.New("pubsub: payload too large")
)

// Permanent marks err as a failure that retrying cannot fix: the message is not
// retried but dead-lettered at once, with the error as its reason. Permanent(nil) is
// nil. Use errors.As with *middleware.PermanentError, or IsPermanent, to test for it.
func Permanent(err error) error { return middleware.Permanent(err) }

// IsPermanent reports whether err, or an error it wraps, was marked with Permanent.
func IsPermanent(err error) bool { return middleware.IsPermanent(err) }
