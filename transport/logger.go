package transport

import (
	"context"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
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

// WatermillLogger adapts l for Watermill components (routers, watermill-kafka), with
// Watermill's Info records logged at Debug: they report every subscription starting
// and stopping, which is a library's detail. Unlike watermill.NewSlogLogger it checks
// the level before it converts a record's fields, so the Trace records Watermill
// writes for every message cost nothing when they are not logged.
func WatermillLogger(l *slog.Logger) watermill.LoggerAdapter {
	return &watermillLogger{l: l}
}

type watermillLogger struct {
	l      *slog.Logger
	fields watermill.LogFields
}

func (w *watermillLogger) log(level slog.Level, msg string, err error, fields watermill.LogFields) {
	ctx := context.Background()
	if !w.l.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, len(w.fields)+len(fields)+1)
	for k, v := range w.fields {
		attrs = append(attrs, slog.Any(k, v))
	}
	for k, v := range fields {
		attrs = append(attrs, slog.Any(k, v))
	}
	if err != nil {
		attrs = append(attrs, slog.Any("error", err))
	}
	w.l.LogAttrs(ctx, level, msg, attrs...)
}

func (w *watermillLogger) Error(msg string, err error, fields watermill.LogFields) {
	w.log(slog.LevelError, msg, err, fields)
}
func (w *watermillLogger) Info(msg string, fields watermill.LogFields) {
	w.log(slog.LevelDebug, msg, nil, fields)
}
func (w *watermillLogger) Debug(msg string, fields watermill.LogFields) {
	w.log(slog.LevelDebug, msg, nil, fields)
}
func (w *watermillLogger) Trace(msg string, fields watermill.LogFields) {
	w.log(watermill.LevelTrace, msg, nil, fields)
}
func (w *watermillLogger) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return &watermillLogger{l: w.l, fields: w.fields.Add(fields)}
}
