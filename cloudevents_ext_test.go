package pubsub_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/metadata"
)

const (
	foreignTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	foreignSpanID  = "00f067aa0ba902b7"
	foreignParent  = "00-" + foreignTraceID + "-" + foreignSpanID + "-01"
)

// TestCloudEventsTraceExtensionContinuesTheTrace: a CloudEvent whose trace context
// comes only as the distributed-tracing extension (ce_traceparent, ce_tracestate in
// binary mode; traceparent in a structured envelope) is processed in that trace, as
// a child of the producer's span; what its handler publishes to a WithCloudEvents
// topic carries the trace context as traceparent and as ce_traceparent.
func TestCloudEventsTraceExtensionContinuesTheTrace(t *testing.T) {
	binary := func(topic string) *message.Message {
		m := message.NewMessage("", []byte(`{"n":1}`))
		for k, v := range map[string]string{"ce_specversion": "1.0", "ce_id": "ev-1", "ce_source": "/sensors", "ce_type": "com.example.reading",
			"ce_traceparent": foreignParent, "ce_tracestate": "vendor=1", "content-type": "application/json"} {
			m.Metadata[k] = v
		}
		return m
	}
	structured := func(topic string) *message.Message {
		m := message.NewMessage("", []byte(`{"specversion":"1.0","id":"ev-2","source":"/sensors","type":"com.example.reading",
			"traceparent":"`+foreignParent+`","tracestate":"vendor=1","datacontenttype":"application/json","data":{"n":1}}`))
		m.Metadata[metadata.ContentType] = metadata.StructuredCloudEvent
		return m
	}
	for name, record := range map[string]func(string) *message.Message{"binary": binary, "structured": structured} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			o, tr := observedForeign(t)
			in := pubsub.NewTopic[counted](kafkatest.Topic("ce-trace-in"))
			out := pubsub.NewTopic[counted](kafkatest.Topic("ce-trace-out"), pubsub.WithCloudEvents("/relay"))
			must(t, pubsub.Subscribe(o.h.Client, in, "g", func(ctx context.Context, m *pubsub.Message[counted]) error {
				return pubsub.Publish(ctx, o.h.Client, out, m.Payload)
			}))
			must(t, tr.Publish(in.Name(), record(in.Name())))
			o.h.WaitHandled(in.Name(), "g", 1)

			span := endedSpan(t, o, "process "+in.Name())
			if got := span.SpanContext().TraceID().String(); got != foreignTraceID {
				t.Errorf("process span in trace %s, want the event's %s", got, foreignTraceID)
			}
			if got := span.Parent().SpanID().String(); got != foreignSpanID {
				t.Errorf("process span's parent %s, want the event's span %s", got, foreignSpanID)
			}
			if got := span.SpanContext().TraceState().Get("vendor"); got != "1" {
				t.Errorf("trace state vendor=%q, want 1", got)
			}
			sent := o.h.WaitEvents(pubsub.EventPublished, out.Name(), "", 1)[0].Message.Metadata
			if sent[metadata.TraceParent] == "" || sent[metadata.CloudEventsTraceParent] != sent[metadata.TraceParent] {
				t.Errorf("published CloudEvent: traceparent %q, ce_traceparent %q; want both, equal",
					sent[metadata.TraceParent], sent[metadata.CloudEventsTraceParent])
			}
			if got := sent[metadata.CloudEventsTraceParent]; len(got) < 35 || got[3:35] != foreignTraceID {
				t.Errorf("published ce_traceparent %q is not in trace %s", got, foreignTraceID)
			}
			if sent[metadata.CloudEventsTraceState] != "vendor=1" {
				t.Errorf("published ce_tracestate %q, want vendor=1", sent[metadata.CloudEventsTraceState])
			}
		})
	}
}

// TestTraceParentWinsOverTheExtension: a record with both traceparent and
// ce_traceparent is processed in traceparent's trace.
func TestTraceParentWinsOverTheExtension(t *testing.T) {
	t.Parallel()
	o, tr := observedForeign(t)
	in := pubsub.NewTopic[counted](kafkatest.Topic("ce-trace-both"))
	must(t, pubsub.Subscribe(o.h.Client, in, "g", func(context.Context, *pubsub.Message[counted]) error { return nil }))
	m := message.NewMessage("", []byte(`{"n":1}`))
	m.Metadata["traceparent"] = "00-11111111111111111111111111111111-2222222222222222-01"
	m.Metadata["ce_traceparent"] = foreignParent
	must(t, tr.Publish(in.Name(), m))
	o.h.WaitHandled(in.Name(), "g", 1)
	if got := endedSpan(t, o, "process "+in.Name()).SpanContext().TraceID().String(); got != "11111111111111111111111111111111" {
		t.Errorf("process span in trace %s, want traceparent's", got)
	}
}

// TestCloudEventsPublishedExtensions: a WithCloudEvents topic with
// WithCloudEventsType publishes that ce_type, its correlation id as
// ce_correlationid and each WithMetadata entry as a lowercase alphanumeric
// extension (besides its own header); entries whose name would be an attribute or
// nothing stay plain headers.
func TestCloudEventsPublishedExtensions(t *testing.T) {
	t.Parallel()
	h, _ := foreignFixture(t)
	orders := pubsub.NewTopic[counted](kafkatest.Topic("ce-ext"), pubsub.WithCloudEvents("/shop"),
		pubsub.WithCloudEventsType("com.example.order.created"))
	got := collect(t, h, orders, "g")
	must(t, pubsub.Publish(context.Background(), h.Client, orders, counted{N: 1}, pubsub.WithCorrelationID("conv-9"),
		pubsub.WithMetadata("Tenant-ID", "acme"), pubsub.WithMetadata("region", "eu"),
		pubsub.WithMetadata("Subject", "not an extension"), pubsub.WithMetadata("--", "nothing left")))
	md := h.WaitEvents(pubsub.EventPublished, orders.Name(), "", 1)[0].Message.Metadata
	want := map[string]string{"ce_type": "com.example.order.created", "ce_correlationid": "conv-9", "ce_tenantid": "acme",
		"ce_region": "eu", "Tenant-ID": "acme", "region": "eu", "Subject": "not an extension", "--": "nothing left"}
	for k, v := range want {
		if md[k] != v {
			t.Errorf("published %s = %q, want %q", k, md[k], v)
		}
	}
	for _, k := range []string{"ce_subject", "ce_"} {
		if v, ok := md[k]; ok {
			t.Errorf("published %s = %q, want none", k, v)
		}
	}
	m := next(t, got)
	if m.Metadata["ce_type"] != "com.example.order.created" || m.CorrelationID != "conv-9" {
		t.Errorf("read back: ce_type %q, correlation id %q", m.Metadata["ce_type"], m.CorrelationID)
	}

	for name, opts := range map[string][]pubsub.TopicOption{
		"without WithCloudEvents": {pubsub.WithCloudEventsType("com.example.x")},
		"empty type":              {pubsub.WithCloudEvents("/shop"), pubsub.WithCloudEventsType("")},
	} {
		bad := pubsub.NewTopic[counted](kafkatest.Topic("ce-ext-bad"), opts...)
		if err := pubsub.Publish(context.Background(), h.Client, bad, counted{}); !errors.Is(err, pubsub.ErrInvalidOption) {
			t.Errorf("%s: Publish error %v, want ErrInvalidOption", name, err)
		}
	}
}

// TestStructuredEventKeepsItsAttributes: a structured CloudEvent's datacontenttype
// and its time, as written (with an offset), reach Metadata; PublishedAt is that time.
func TestStructuredEventKeepsItsAttributes(t *testing.T) {
	t.Parallel()
	h, tr := foreignFixture(t)
	topic := pubsub.NewTopic[counted](kafkatest.Topic("ce-structured"))
	got := collect(t, h, topic, "g")
	m := message.NewMessage("", []byte(`{"specversion":"1.0","id":"ev-3","source":"/s","type":"t",
		"time":"2026-11-30T12:00:00.25+02:00","datacontenttype":"application/json","data":{"n":3}}`))
	m.Metadata[metadata.ContentType] = metadata.StructuredCloudEvent
	must(t, tr.Publish(topic.Name(), m))
	read := next(t, got)
	if read.Metadata["ce_time"] != "2026-11-30T12:00:00.25+02:00" {
		t.Errorf("ce_time %q, want the event's own string", read.Metadata["ce_time"])
	}
	if read.Metadata["ce_datacontenttype"] != "application/json" {
		t.Errorf("ce_datacontenttype %q, want application/json", read.Metadata["ce_datacontenttype"])
	}
	if want := time.Date(2026, 11, 30, 10, 0, 0, 250e6, time.UTC); !read.PublishedAt.Equal(want) {
		t.Errorf("PublishedAt %v, want %v", read.PublishedAt, want)
	}
	if read.Payload.N != 3 {
		t.Errorf("payload %+v", read.Payload)
	}
}
