package transport

import (
	"context"
	"log/slog"
)

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
