package transport

import (
	"context"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Provisioner is implemented by transports whose topics must exist before use (Kafka).
// The client calls Provision when a subscription is added, for the subscription's
// topic and for the retry and dead-letter topics it may publish to, so that a missing
// or under-replicated topic is reported by Subscribe rather than by the first failing
// message.
type Provisioner interface {
	// Provision makes sure every topic exists and is as durable as the transport is
	// configured to require. It is idempotent and safe for concurrent use.
	Provision(ctx context.Context, topics ...string) error
}

type loggerKey struct{}

// WithLogger returns a context that carries the logger an OpenFunc should use, so a
// transport opened by URL logs where its client logs.
func WithLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, l)
}

// LoggerFrom returns the logger recorded by WithLogger, or slog.Default().
func LoggerFrom(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok && l != nil {
		return l
	}
	return slog.Default()
}

// Reader is implemented by transports that can read what a topic holds without a
// consumer group: the client lists dead letters with it.
type Reader interface {
	// ReadAll returns the messages topic holds now, oldest first within each
	// partition, each with its Position in its context. It does not wait for more
	// messages and moves no group's position. A topic that does not exist holds none.
	ReadAll(ctx context.Context, topic string) ([]*message.Message, error)
}
