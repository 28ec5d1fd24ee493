package outbox_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/internal/testsuite"
	"github.com/pubsubkit/pubsub/outbox"
)

func TestRelayedMessageContinuesTheWritersTrace(t *testing.T) {
	db, _ := newDB(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	var traceLog testsuite.SyncBuffer
	c, err := pubsub.Open(context.Background(), "memory://", pubsub.WithTracerProvider(tp),
		pubsub.WithTraceLog(slog.NewJSONHandler(&traceLog, nil)))
	if err != nil {
		t.Fatal(err)
	}
	o, err := outbox.New(db, c)
	if err != nil {
		t.Fatal(err)
	}
	var k collector
	if err := pubsub.Subscribe(c, orders, "check", k.handle); err != nil {
		t.Fatal(err)
	}
	runAll(t, c, o)
	ctx, span := tp.Tracer("shop").Start(context.Background(), "place order")
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := outbox.Publish(ctx, tx, o, orders, order{Customer: "ada", N: 1}, pubsub.WithCorrelationID("conv-7")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	span.End()
	got := k.wait(t, 1)
	writer := span.SpanContext()
	var send sdktrace.ReadOnlySpan
	waitFor(t, "the relay's send span", func() bool {
		for _, s := range rec.Ended() {
			if s.SpanKind() == trace.SpanKindProducer {
				send = s
				return true
			}
		}
		return false
	})
	if send.SpanContext().TraceID() != writer.TraceID() || send.Parent().SpanID() != writer.SpanID() {
		t.Fatalf("send span %s has trace %s parent %s; want trace %s parent %s (the writer's span)",
			send.Name(), send.SpanContext().TraceID(), send.Parent().SpanID(), writer.TraceID(), writer.SpanID())
	}
	if got[0].CorrelationID != "conv-7" {
		t.Errorf("correlation id %q, want conv-7", got[0].CorrelationID)
	}
	var published bool
	for _, line := range strings.Split(strings.TrimSpace(traceLog.String()), "\n") {
		var l struct {
			Event     string `json:"event"`
			Cid       string `json:"cid"`
			TraceID   string `json:"trace_id"`
			MessageID string `json:"message_id"`
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("trace log line %q: %v", line, err)
		}
		if l.Event == "published" && l.MessageID == got[0].ID {
			published = true
			if l.Cid != "conv-7" || l.TraceID != writer.TraceID().String() {
				t.Errorf("the relay's trace log line has cid %q trace %q; want conv-7 and the writer's trace %s", l.Cid, l.TraceID, writer.TraceID())
			}
		}
	}
	if !published {
		t.Errorf("no trace log line for the relayed message:\n%s", traceLog.String())
	}
}
