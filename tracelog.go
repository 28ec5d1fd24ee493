package pubsub

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/pubsubkit/pubsub/codec"
	"github.com/pubsubkit/pubsub/metadata"
)

// DefaultTraceLogBodyLimit is how many payload bytes a trace log line carries unless
// TraceLogBodyLimit says otherwise.
const DefaultTraceLogBodyLimit = 4096

// traceLogTime is the time format of the trace log: RFC 3339 with milliseconds.
const traceLogTime = "2006-01-02T15:04:05.000Z07:00"

// TraceLogOption configures WithTraceLog.
type TraceLogOption func(*traceLogConfig)

type traceLogConfig struct {
	bodyLimit int
	omitBody  bool
	redact    func(topic string, body []byte) []byte
}

// TraceLogBodyLimit cuts the body at n bytes (n > 0). A cut JSON body is logged as a
// string ending in "…"; other bodies are base64 of their first n bytes.
func TraceLogBodyLimit(n int) TraceLogOption {
	return func(c *traceLogConfig) { c.bodyLimit = n }
}

// TraceLogOmitBody logs "body": null on every line.
func TraceLogOmitBody() TraceLogOption {
	return func(c *traceLogConfig) { c.omitBody = true }
}

// TraceLogRedact passes every body through fn before it is logged, for example to mask
// personal data. fn must not modify body; it returns what to log.
func TraceLogRedact(fn func(topic string, body []byte) []byte) TraceLogOption {
	return func(c *traceLogConfig) { c.redact = fn }
}

// WithTraceLog writes one line to h for every event in a message's life: published,
// processed, failed, retried, dead_lettered, replayed. With slog.NewJSONHandler each
// line is a JSON object with the fields
//
//	cid, topic, event, body, processing, occurred_at, processed_at, host
//
// always, and message_id, group, attempt, error and trace_id where they apply. body is
// the payload, as a JSON value for the JSON codec and base64 otherwise, cut at
// DefaultTraceLogBodyLimit bytes (TraceLogBodyLimit, TraceLogOmitBody,
// TraceLogRedact); processing is the handler's time in seconds (processed, failed);
// occurred_at is when the message was published and processed_at when the event
// happened, both RFC 3339 with milliseconds. Query the log store by cid to follow a
// conversation across services.
//
// The published line is written as the message is handed to the transport, so that
// it precedes the lines of its consumers (on Kafka a consumer can handle a record
// before the producer's acknowledgement arrives). When the publish then fails, a
// failed line without a group follows, with the error; Publish returns it too.
func WithTraceLog(h slog.Handler, opts ...TraceLogOption) Option {
	return func(o *options) {
		if h == nil {
			o.errs = append(o.errs, fmt.Errorf("WithTraceLog(nil)"))
			return
		}
		cfg := traceLogConfig{bodyLimit: DefaultTraceLogBodyLimit}
		for _, opt := range opts {
			if opt != nil {
				opt(&cfg)
			}
		}
		if cfg.bodyLimit <= 0 {
			o.errs = append(o.errs, fmt.Errorf("TraceLogBodyLimit(%d): want a positive size", cfg.bodyLimit))
			return
		}
		host, _ := os.Hostname()
		o.traceLog = &traceLog{log: slog.New(h), cfg: cfg, host: host}
	}
}

type traceLog struct {
	log  *slog.Logger
	cfg  traceLogConfig
	host string
}

// write logs e as one line.
func (l *traceLog) write(ctx context.Context, e Event) {
	attrs := make([]slog.Attr, 0, 13)
	attrs = append(attrs,
		slog.String("cid", e.CorrelationID),
		slog.String("topic", e.Topic),
		slog.String("event", string(e.Kind)),
		slog.Any("body", l.body(e)),
		slog.Float64("processing", processing(e)),
		slog.String("occurred_at", occurredAt(e)),
		slog.String("processed_at", e.At.UTC().Format(traceLogTime)),
		slog.String("host", l.host),
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
func (l *traceLog) body(e Event) any {
	if l.cfg.omitBody || e.Message == nil {
		return nil
	}
	b := e.Message.Payload
	if l.cfg.redact != nil {
		b = l.cfg.redact(e.Topic, b)
	}
	isJSON := e.Message.Metadata.Get(metadata.ContentType) == codec.JSON.ContentType()
	switch {
	case isJSON && len(b) <= l.cfg.bodyLimit && json.Valid(b):
		return json.RawMessage(b)
	case isJSON:
		return cutUTF8(b, l.cfg.bodyLimit) + "…"
	case len(b) > l.cfg.bodyLimit:
		return base64.StdEncoding.EncodeToString(b[:l.cfg.bodyLimit])
	default:
		return base64.StdEncoding.EncodeToString(b)
	}
}

// cutUTF8 returns at most n bytes of b as a string, not splitting a character.
func cutUTF8(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	for n > 0 && b[n]&0xC0 == 0x80 {
		n--
	}
	return string(b[:n])
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
		if t, err := time.Parse(time.RFC3339Nano, e.Message.Metadata.Get(metadata.PublishedAt)); err == nil {
			return t.UTC().Format(traceLogTime)
		}
	}
	return e.At.UTC().Format(traceLogTime)
}
