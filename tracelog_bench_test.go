package pubsub

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/metadata"
)

// BenchmarkTraceLogLine is the cost of one trace log line through slog's JSON handler
// to io.Discard, with a small JSON body and with the body omitted.
func BenchmarkTraceLogLine(b *testing.B) {
	b.Run("body", func(b *testing.B) { benchTraceLogLine(b) })
	b.Run("nobody", func(b *testing.B) { benchTraceLogLine(b, TraceLogOmitBody()) })
}

func benchTraceLogLine(b *testing.B, opts ...TraceLogOption) {
	var o options
	WithTraceLog(slog.NewJSONHandler(io.Discard, nil), opts...)(&o)
	msg := message.NewMessage("id-1", []byte(`{"id":"o-1","customer":"ada","total":1250,"note":"leave at the door"}`))
	msg.Metadata.Set(metadata.ContentType, "application/json")
	msg.Metadata.Set(metadata.PublishedAt, time.Now().UTC().Format(time.RFC3339Nano))
	e := Event{Kind: EventProcessed, Topic: "orders", Group: "billing", MessageID: "id-1", CorrelationID: "cid-1",
		Attempt: 1, Duration: time.Millisecond, At: time.Now(), Message: msg}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		o.traceLog.write(ctx, e)
	}
}
