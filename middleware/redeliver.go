package middleware

import "errors"

// ErrRedeliver marks an error after which a message must be delivered again: neither
// acked nor dead-lettered. DeadLetter passes any error that wraps it through, so the
// message is nacked; Retry and RetryTopic return it from the handler at once, as no
// attempt (nothing reported, nothing retried). ErrInterrupted and ErrRetryPublish wrap
// it; a middleware of your own can too.
var ErrRedeliver = errors.New("redeliver")

// redeliverError is a sentinel that also matches ErrRedeliver.
type redeliverError struct{ text string }

func (e *redeliverError) Error() string        { return e.text }
func (e *redeliverError) Is(target error) bool { return target == ErrRedeliver }
