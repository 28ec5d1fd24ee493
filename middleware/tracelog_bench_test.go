package middleware_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/middleware"
)

// BenchmarkTraceLogLine is the cost of one trace log line through slog's JSON handler
// to io.Discard, with a small JSON body and with the body omitted.
func BenchmarkTraceLogLine(b *testing.B) {
	b.Run("body", func(b *testing.B) { benchTraceLogLine(b, middleware.TraceLogOptions{}) })
	b.Run("nobody", func(b *testing.B) { benchTraceLogLine(b, middleware.TraceLogOptions{OmitBody: true}) })
}

func benchTraceLogLine(b *testing.B, o middleware.TraceLogOptions) {
	l := middleware.NewTraceLog(slog.NewJSONHandler(io.Discard, nil), o)
	msg := message.NewMessage("id-1", []byte(`{"id":"o-1","customer":"ada","total":1250,"note":"leave at the door"}`))
	msg.Metadata.Set(metadata.ContentType, "application/json")
	msg.Metadata.Set(metadata.PublishedAt, metadata.FormatTime(time.Now()))
	e := middleware.Event{Kind: middleware.EventProcessed, Topic: "orders", Group: "billing", MessageID: "id-1", CorrelationID: "cid-1",
		Attempt: 1, Duration: time.Millisecond, At: time.Now(), Message: msg}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		l.Log(ctx, e)
	}
}
