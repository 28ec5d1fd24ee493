package main

import (
	"errors"
	"fmt"

	"github.com/pubsubkit/pubsub"
)

// Exit codes of pubsubctl.
const (
	exitOK       = 0
	exitFailed   = 1
	exitUsage    = 2
	exitNotFound = 3
)

// usageError is a mistake in how pubsubctl was called.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// errNotFound marks what the command looked for and did not find.
var errNotFound = errors.New("not found")

// exitCode is the exit code for err; started says whether the command itself ran
// (else cobra refused its arguments or flags).
func exitCode(err error, started bool) int {
	var u usageError
	switch {
	case err == nil:
		return exitOK
	case !started, errors.As(err, &u), errors.Is(err, pubsub.ErrInvalidOption), errors.Is(err, pubsub.ErrUnknownScheme):
		return exitUsage
	case errors.Is(err, pubsub.ErrUnknownSubscription), errors.Is(err, errNotFound):
		return exitNotFound
	}
	return exitFailed
}
