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
// to io.Discard, with a small JSON body.
func BenchmarkTraceLogLine(b *testing.B) {
	var o options
	WithTraceLog(slog.NewJSONHandler(io.Discard, nil))(&o)
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

func BenchmarkTraceLogLineNoBody(b *testing.B) {
	var o options
	WithTraceLog(slog.NewJSONHandler(io.Discard, nil), TraceLogOmitBody())(&o)
	msg := message.NewMessage("id-1", []byte(`{"id":"o-1"}`))
	e := Event{Kind: EventProcessed, Topic: "orders", Group: "billing", MessageID: "id-1", CorrelationID: "cid-1",
		Attempt: 1, Duration: time.Millisecond, At: time.Now(), Message: msg}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		o.traceLog.write(ctx, e)
	}
}
