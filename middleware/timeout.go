package middleware

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/transport"
)

// ErrAttemptTimeout is wrapped by the error of an attempt that ran out of time.
var ErrAttemptTimeout = errors.New("attempt timed out")

// Timeout gives each attempt its own deadline: the handler's context ends d after the
// attempt began. Put it inside Retry, so that a retry starts with a fresh deadline
// rather than the expired one (Watermill #467). d == 0 returns the handler unchanged;
// a negative d is an error.
//
// A handler should return when its context ends; Timeout cannot stop one that does
// not, but an attempt that returns after its deadline with an error fails with
// ErrAttemptTimeout.
func Timeout(d time.Duration) (message.HandlerMiddleware, error) {
	if d < 0 {
		return nil, fmt.Errorf("middleware: %w: Timeout(%v)", transport.ErrInvalidOption, d)
	}
	return func(h message.HandlerFunc) message.HandlerFunc {
		if d == 0 {
			return h
		}
		return func(msg *message.Message) ([]*message.Message, error) {
			parent := msg.Context()
			ctx, cancel := context.WithTimeout(parent, d)
			msg.SetContext(ctx)
			defer func() {
				cancel()
				msg.SetContext(parent)
			}()
			produced, err := h(msg)
			if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && parent.Err() == nil && !errors.Is(err, ErrAttemptTimeout) {
				err = fmt.Errorf("%w after %v: %w", ErrAttemptTimeout, d, err)
			}
			return produced, err
		}
	}, nil
}
