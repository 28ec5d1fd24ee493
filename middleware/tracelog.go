package middleware

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"os"

	"github.com/pubsubkit/pubsub/codec"
	"github.com/pubsubkit/pubsub/metadata"
)

// DefaultTraceLogBodyLimit is how many payload bytes a trace log line carries unless
// TraceLogOptions.BodyLimit says otherwise.
const DefaultTraceLogBodyLimit = 4096

// traceLogTime is the time format of the trace log: RFC 3339 with milliseconds.
const traceLogTime = "2006-01-02T15:04:05.000Z07:00"

// TraceLogOptions configures a TraceLog. The zero value logs bodies up to
// DefaultTraceLogBodyLimit bytes, unredacted, with the machine's host name.
type TraceLogOptions struct {
	// BodyLimit cuts the body at this many bytes: a cut JSON body is logged as a
	// string ending in "…", other bodies as base64 of their first BodyLimit bytes. 0
	// means DefaultTraceLogBodyLimit.
	BodyLimit int
	// OmitBody logs "body": null on every line.
	OmitBody bool
	// Redact, when set, passes every body through it before it is logged, for example
	// to mask personal data. It must not modify body; it returns what to log.
	Redact func(topic string, body []byte) []byte
	// Host is the host field; "" means os.Hostname().
	Host string
}

// TraceLog is the Observer that writes one line per event of a message's life to a
// slog.Handler: published, processed, failed, retried, dead_lettered, replayed,
// discarded. With slog.NewJSONHandler each line is a JSON object with the fields
//
//	cid, topic, event, body, processing, occurred_at, processed_at, host
//
// always, and message_id, group, attempt, error and trace_id where they apply. body is
// the payload, as a JSON value for the JSON codec and base64 otherwise (see
// TraceLogOptions); processing is the handler's time in seconds (processed, failed);
// occurred_at is when the message was published and processed_at when the event
// happened, both RFC 3339 with milliseconds. Query the log store by cid to follow a
// conversation across services.
//
// The published line is written by the publisher with Log as the message is handed
// to the transport, so that it precedes the lines of its consumers (on Kafka a
// consumer can handle a record before the producer's acknowledgement arrives);
// Observe therefore skips EventPublished. A TraceLog is safe for concurrent use.
type TraceLog struct {
	log  *slog.Logger
	opts TraceLogOptions
}

// NewTraceLog returns a TraceLog writing to h.
func NewTraceLog(h slog.Handler, o TraceLogOptions) *TraceLog {
	if o.BodyLimit <= 0 {
		o.BodyLimit = DefaultTraceLogBodyLimit
	}
	if o.Host == "" {
		o.Host, _ = os.Hostname()
	}
	return &TraceLog{log: slog.New(h), opts: o}
}

// Observe writes e, unless it is EventPublished (see TraceLog).
func (l *TraceLog) Observe(ctx context.Context, e Event) {
	if e.Kind != EventPublished {
		l.Log(ctx, e)
	}
}

// Log writes e as one line, with the fields Notify fills set when empty.
func (l *TraceLog) Log(ctx context.Context, e Event) {
	e = filled(ctx, e)
	attrs := make([]slog.Attr, 0, 13)
	attrs = append(attrs,
		slog.String("cid", e.CorrelationID),
		slog.String("topic", e.Topic),
		slog.String("event", string(e.Kind)),
		slog.Any("body", l.body(e)),
		slog.Float64("processing", processing(e)),
		slog.String("occurred_at", occurredAt(e)),
		slog.String("processed_at", e.At.UTC().Format(traceLogTime)),
		slog.String("host", l.opts.Host),
		slog.String("message_id", e.MessageID),
	)
	if e.Group != "" {
		attrs = append(attrs, slog.String("group", e.Group))
	}
	if e.Attempt > 0 {
		attrs = append(attrs, slog.Int("attempt", e.Attempt))
	}
	if e.Err != nil {
		attrs = append(attrs, slog.String("error", e.Err.Error()))
	}
	if e.TraceID != "" {
		attrs = append(attrs, slog.String("trace_id", e.TraceID))
	}
	l.log.LogAttrs(ctx, slog.LevelInfo, "pubsub "+string(e.Kind), attrs...)
}

// body is the payload as the line carries it: a JSON value, a string, or nil.
func (l *TraceLog) body(e Event) any {
	if l.opts.OmitBody || e.Message == nil {
		return nil
	}
	b := e.Message.Payload
	if l.opts.Redact != nil {
		b = l.opts.Redact(e.Topic, b)
	}
	limit := l.opts.BodyLimit
	isJSON := metadata.MediaType(metadata.ContentTypeOf(e.Message.Metadata)) == codec.JSON.ContentType()
	switch {
	case isJSON && len(b) <= limit && json.Valid(b):
		return json.RawMessage(b)
	case isJSON:
		return metadata.Cut(string(b[:min(len(b), limit+1)]), limit)
	case len(b) > limit:
		return base64.StdEncoding.EncodeToString(b[:limit])
	default:
		return base64.StdEncoding.EncodeToString(b)
	}
}

func processing(e Event) float64 {
	if e.Kind == EventProcessed || e.Kind == EventFailed {
		return e.Duration.Seconds()
	}
	return 0
}

// occurredAt is when the message was published, or the event's time when unknown.
func occurredAt(e Event) string {
	if e.Message != nil {
		if t, ok := metadata.ParseTime(e.Message.Metadata.Get(metadata.PublishedAt)); ok {
			return t.UTC().Format(traceLogTime)
		}
	}
	return e.At.UTC().Format(traceLogTime)
}
