// Package middleware holds pubsubkit's consumer middleware. Each one has Watermill's
// shape, message.HandlerMiddleware (func(message.HandlerFunc) message.HandlerFunc), so
// it also works on a plain Watermill router:
//
//	router.AddMiddleware(middleware.CorrelationID, middleware.Recover)
//
// The pubsub client composes them per subscription in the one order its documentation
// gives; this package does not choose an order. No middleware here imports a transport.
package middleware
