// Package middleware holds pubsubkit's consumer middleware. Each one has Watermill's
// shape, message.HandlerMiddleware (func(message.HandlerFunc) message.HandlerFunc), so
// it also works on a plain Watermill router:
//
//	router.AddMiddleware(middleware.CorrelationID, deadLetter,
//		middleware.Retry(middleware.RetryConfig{MaxRetries: 3, Backoff: middleware.ExponentialBackoff(time.Second, 0)}),
//		middleware.Timeout(30*time.Second), middleware.Recover)
//
// What each does:
//
//   - CorrelationID gives every message a correlation id and puts it in the context.
//   - DeadLetter publishes a message whose handler failed for good to a dead-letter
//     topic, with why, and acks it.
//   - Retry retries in place with a Backoff (ordered retries); RetryTopic moves a failed
//     message to a retry topic and acks it (unordered retries), and WaitDue holds a
//     message from a retry topic until it is due.
//   - Timeout gives each attempt its own deadline.
//   - Recover turns a panic into a *PanicError; RecoverPermanent marks it Permanent.
//
// Order matters, outermost first: CorrelationID, DeadLetter, (WaitDue,) Retry or
// RetryTopic, Timeout, Recover. DeadLetter outside the retries sees only final errors
// (Watermill #580, #645: the other way round dead-letters after one attempt); Timeout
// inside Retry gives every retry a fresh deadline (#467). The pubsub client composes
// them in that order in one place; this package does not choose an order. No
// middleware here imports a transport.
package middleware
