package pubsub_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/transport/memory"
)

type counted struct {
	N int `json:"n"`
}

// observedForeign is an observed client on a memory transport that the test can
// also write raw records to, as a producer outside pubsubkit would.
func observedForeign(t *testing.T) (observed, *memory.Transport) {
	tr, err := memory.New(memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return newObservedOn(t, tr, pubsub.TraceLogOptions{}), tr
}

// endedSpan waits for the ended span called name.
func endedSpan(t *testing.T, o observed, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, s := range o.spans.Ended() {
			if s.Name() == name {
				return s
			}
		}
	}
	t.Fatalf("no span %q ended", name)
	return nil
}

// traceLogLine returns the trace log line of event on topic.
func traceLogLine(t *testing.T, o observed, event, topic string) map[string]any {
	t.Helper()
	for _, l := range o.log.lines(t) {
		if l["event"] == event && l["topic"] == topic {
			return l
		}
	}
	t.Fatalf("no trace log line %q on %q", event, topic)
	return nil
}

// TestCorrelationIDInEverySpelling: a record from another producer that carries its
// correlation id as correlation_id, x-correlation-id, correlation-id or
// ce_correlationid gives that id to the CONSUMER span's conversation id, the trace
// log and the event hook; what its handler publishes carries correlation_id and the
// spelling the record used.
func TestCorrelationIDInEverySpelling(t *testing.T) {
	for _, spelling := range []string{"correlation_id", "x-correlation-id", "correlation-id", "ce_correlationid"} {
		t.Run(spelling, func(t *testing.T) {
			t.Parallel()
			o, tr := observedForeign(t)
			in := pubsub.NewTopic[counted](kafkatest.Topic("spelling-in"))
			out := pubsub.NewTopic[counted](kafkatest.Topic("spelling-out"))
			must(t, pubsub.Subscribe(o.h.Client, in, "g", func(ctx context.Context, m *pubsub.Message[counted]) error {
				if m.CorrelationID != "conv-7" {
					t.Errorf("Message.CorrelationID = %q, want conv-7", m.CorrelationID)
				}
				return pubsub.Publish(ctx, o.h.Client, out, counted{N: m.Payload.N + 1})
			}))
			raw := message.NewMessage("", []byte(`{"n":1}`))
			raw.Metadata[spelling] = "conv-7"
			raw.Metadata[metadata.ContentType] = "application/json"
			must(t, tr.Publish(in.Name(), raw))
			o.h.WaitHandled(in.Name(), "g", 1)

			if got := o.h.Events(pubsub.EventProcessed, in.Name(), "g")[0].CorrelationID; got != "conv-7" {
				t.Errorf("event hook: correlation id %q, want conv-7", got)
			}
			span := endedSpan(t, o, "process "+in.Name())
			if got := attr(span, "messaging.message.conversation_id").AsString(); got != "conv-7" {
				t.Errorf("span: messaging.message.conversation_id %q, want conv-7", got)
			}
			if got := traceLogLine(t, o, "processed", in.Name())["cid"]; got != "conv-7" {
				t.Errorf("trace log: cid %v, want conv-7", got)
			}
			sent := o.h.WaitEvents(pubsub.EventPublished, out.Name(), "", 1)[0].Message.Metadata
			for _, k := range []string{metadata.CorrelationID, spelling} {
				if sent[k] != "conv-7" {
					t.Errorf("published message: %s = %q, want conv-7 (metadata %v)", k, sent[k], sent)
				}
			}
		})
	}
}
