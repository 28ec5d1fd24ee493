package middleware

import (
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/ThreeDotsLabs/watermill/message"
)

// PanicError is the error Recover returns for a handler that panicked.
type PanicError struct {
	Value any    // what the handler panicked with
	Stack []byte // the goroutine's stack at the panic
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("handler panicked: %v\n%s", e.Value, e.Stack)
}

// Unwrap returns the panic value when it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// Recover turns a panic in the handler into a *PanicError, so that it takes the same
// path as a returned error (retry, then dead letter) instead of crashing the process or
// being redelivered without end.
func Recover(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) (produced []*message.Message, err error) {
		defer func() {
			if r := recover(); r != nil {
				produced, err = nil, &PanicError{Value: r, Stack: debug.Stack()}
			}
		}()
		return h(msg)
	}
}

// RecoverPermanent is Recover for handlers whose panics retrying cannot fix: the
// *PanicError is marked Permanent, so it is dead-lettered at once.
func RecoverPermanent(h message.HandlerFunc) message.HandlerFunc {
	recovered := Recover(h)
	return func(msg *message.Message) ([]*message.Message, error) {
		produced, err := recovered(msg)
		var p *PanicError
		if errors.As(err, &p) {
			return nil, Permanent(err)
		}
		return produced, err
	}
}
