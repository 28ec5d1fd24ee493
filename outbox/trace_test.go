package outbox_test

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/outbox"
)

func TestRelayedMessageContinuesTheWritersTrace(t *testing.T) {
	db, _ := newDB(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	c, err := pubsub.Open(context.Background(), "memory://", pubsub.WithTracerProvider(tp))
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
	if err := outbox.Publish(ctx, tx, o, orders, order{Customer: "ada", N: 1}); err != nil {
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
	if got[0].CorrelationID != got[0].ID {
		t.Errorf("correlation id %q, want the message's own id %q for a new conversation", got[0].CorrelationID, got[0].ID)
	}
}
