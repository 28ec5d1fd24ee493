// Package middleware holds pubsubkit's consumer middleware. Every stage has
// Watermill's shape, message.HandlerMiddleware (func(message.HandlerFunc)
// message.HandlerFunc), so it also works on a plain Watermill router. A stage without
// settings is a HandlerMiddleware value (CorrelationID, Recover, RecoverPermanent); a
// stage with settings is made by a function of its settings (a Config struct; Timeout
// takes its duration alone) that checks them and returns
// (message.HandlerMiddleware, error). The observe stage is also made as an
// Observation (NewObservation, which has nothing to check): its Middleware method is
// the stage, and the stages that report are given the Observation itself:
//
//	observe := middleware.NewObservation(middleware.ObserveConfig{Observers: []middleware.Observer{traceLog}})
//	retry, err := middleware.Retry(middleware.RetryConfig{MaxRetries: 3, Backoff: middleware.ExponentialBackoff(time.Second, 0), Events: observe})
//	router.AddMiddleware(observe.Middleware, middleware.CorrelationID, deadLetter, retry, timeout, middleware.Recover)
//
// What each does:
//
//   - Trust drops the bookkeeping keys (attempt, due time, origin) a record brings to a
//     subscription's topic from outside, and bounds them on its retry topics.
//   - Detach gives the stages inside it and the handler a context with a lifetime of
//     its own, so that a revoked partition or a router's Close does not cut a handler
//     short.
//   - Tracing runs each delivery in a CONSUMER span, child of the producer's span;
//     StartSend and EndSend make the PRODUCER span of a publish.
//   - Observe (an Observation) makes Observers hear every event of a message's life as
//     it happens: the TraceLog (one JSON line per event), Metrics (OpenTelemetry
//     counters and histograms), SpanEvents (events on the delivery's span), and your
//     own. Events flow down: the stages that report (Retry, RetryTopic, DeadLetter,
//     WaitDue) are given the Observation as their Events when they are made, and call
//     it; no stage looks another up in the message's context.
//   - CorrelationID gives every message a correlation id and puts it in the context.
//   - DeadLetter publishes a message whose handler failed for good to a dead-letter
//     topic, with why, and acks it.
//   - Retry retries in place with a Backoff (ordered retries); RetryTopic moves a failed
//     message to a retry topic and acks it (unordered retries), and WaitDue holds a
//     message from a retry topic until it is due.
//   - Timeout gives each attempt its own deadline.
//   - Recover turns a panic into a *PanicError; RecoverPermanent marks it Permanent.
//
// Order matters: DeadLetter outside the retries sees only final errors (Watermill
// #580, #645: the other way round dead-letters after one attempt); Timeout inside Retry
// gives every retry a fresh deadline (#467); Observe outside the stages that report
// to it, and Tracing outside Observe, so that SpanEvents finds the delivery's span. This package does not choose an order: the pubsub client
// composes the stages in one place, its chain.go, which gives the order. No middleware
// here imports a transport implementation.
package middleware
