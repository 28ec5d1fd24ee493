package pubsub

import (
	"context"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
)

// watermillLogger adapts l for the Watermill router, with Watermill's Info records
// logged at Debug: they report every subscription starting and stopping, which is a
// library's detail. Unlike watermill.NewSlogLogger it checks the level before it
// converts a record's fields, so the Trace records the router writes for every message
// cost nothing when they are not logged.
func watermillLogger(l *slog.Logger) watermill.LoggerAdapter { return &wmLogger{l: l} }

type wmLogger struct {
	l      *slog.Logger
	fields watermill.LogFields
}

func (w *wmLogger) log(level slog.Level, msg string, err error, fields watermill.LogFields) {
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

func (w *wmLogger) Error(msg string, err error, fields watermill.LogFields) {
	w.log(slog.LevelError, msg, err, fields)
}
func (w *wmLogger) Info(msg string, fields watermill.LogFields) {
	w.log(slog.LevelDebug, msg, nil, fields)
}
func (w *wmLogger) Debug(msg string, fields watermill.LogFields) {
	w.log(slog.LevelDebug, msg, nil, fields)
}
func (w *wmLogger) Trace(msg string, fields watermill.LogFields) {
	w.log(watermill.LevelTrace, msg, nil, fields)
}
func (w *wmLogger) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return &wmLogger{l: w.l, fields: w.fields.Add(fields)}
}
