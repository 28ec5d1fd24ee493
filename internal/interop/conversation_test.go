package interop

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	pubsub "github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/metadata"
)

// TestConversationWithLibrdkafka: librdkafka produces records that carry their
// correlation id in each spelling other clients use, and a CloudEvent whose trace
// context is only the CloudEvents distributed-tracing extension; a pubsubkit handler
// publishes one message for each, and a librdkafka consumer reads them: each carries
// the id as correlation_id and in the spelling it came in, and the CloudEvent's
// reply, published as a CloudEvent, carries the producer's trace as traceparent and
// ce_traceparent.
func TestConversationWithLibrdkafka(t *testing.T) {
	t.Parallel()
	requirePython(t)
	cluster := kafkatest.New(t)
	in, out := kafkatest.Topic("conv-in"), kafkatest.Topic("conv-out")
	createTopic(t, cluster, in, 1)
	client := openClient(t, cluster, "")
	outTopic := pubsub.NewTopic[value](out, pubsub.WithCloudEvents("/relay"), pubsub.WithCloudEventsType("com.example.relayed"))
	must(t, pubsub.Subscribe(client, pubsub.NewTopic[value](in), "relay", func(ctx context.Context, m *pubsub.Message[value]) error {
		return pubsub.Publish(ctx, client, outTopic, m.Payload)
	}))
	run(t, client)

	spellings := []string{"correlation_id", "x-correlation-id", "correlation-id", "ce_correlationid"}
	var records []record
	for i, h := range spellings {
		records = append(records, record{Topic: in, Value: str(value{N: i}.json()), Headers: [][2]string{{h, "conv-" + h}}})
	}
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	records = append(records, record{Topic: in, Value: str(value{N: len(spellings)}.json()), Headers: [][2]string{
		{"ce_specversion", "1.0"}, {"ce_id", "ev-1"}, {"ce_source", "/librdkafka"}, {"ce_type", "com.example.reading"},
		{"ce_traceparent", "00-" + traceID + "-00f067aa0ba902b7-01"}, {"content-type", "application/json"}}})
	produceAll(t, producer{Config: rdkafka(cluster, nil), Records: records})

	got := consumeAll(t, rdkafka(cluster, nil), len(records), out)
	slices.SortFunc(got, func(a, b consumed) int { return strings.Compare(a.value(), b.value()) })
	for i, h := range spellings {
		r := got[i]
		for _, k := range []string{"correlation_id", h, "ce_correlationid"} {
			if vs := r.header(k); len(vs) != 1 || vs[0] != "conv-"+h {
				t.Errorf("reply to the record with %s: header %s = %q, want [conv-%s]", h, k, vs, h)
			}
		}
		if vs := r.header("ce_type"); len(vs) != 1 || vs[0] != "com.example.relayed" {
			t.Errorf("reply %d: ce_type %q", i, vs)
		}
	}
	ce := got[len(spellings)]
	for _, k := range []string{"traceparent", "ce_traceparent"} {
		if vs := ce.header(k); len(vs) != 1 || !strings.HasPrefix(vs[0], "00-"+traceID+"-") {
			t.Errorf("reply to the CloudEvent: %s = %q, want the producer's trace %s", k, vs, traceID)
		}
	}
}

// TestKnativeDeadLetterReadByLibrdkafka: a record from librdkafka that is no
// CloudEvent and has no content type, failed with a long reason, reaches the
// dead-letter topic as Knative writes it: knativeerrordata decodes to exactly 1,024
// bytes of the reason, and ce_time and content-type are there.
func TestKnativeDeadLetterReadByLibrdkafka(t *testing.T) {
	t.Parallel()
	requirePython(t)
	cluster := kafkatest.New(t)
	topic := kafkatest.Topic("knative-shape")
	createTopic(t, cluster, topic, 1)
	client := openClient(t, cluster, "")
	reason := strings.Repeat("r", 2000)
	must(t, pubsub.Subscribe(client, pubsub.NewTopic[value](topic), "g", func(context.Context, *pubsub.Message[value]) error {
		return pubsub.Permanent(errors.New(reason))
	}, pubsub.WithKnativeDeadLetters()))
	run(t, client)
	produceAll(t, producer{Config: rdkafka(cluster, nil), Records: []record{{Topic: topic, Value: str(value{N: 1}.json())}}})

	letter := consumeAll(t, rdkafka(cluster, nil), 1, pubsub.DeadLetterTopicName(topic, "g"))[0]
	one := func(name string) string {
		if vs := letter.header(name); len(vs) == 1 {
			return vs[0]
		}
		t.Errorf("header %s: %q, want one value (headers %v)", name, letter.header(name), letter.headerNames())
		return ""
	}
	data, err := base64.StdEncoding.DecodeString(one(metadata.KnativeErrorData))
	if err != nil || len(data) != 1024 || !utf8.Valid(data) || string(data) != reason[:1024] {
		t.Errorf("knativeerrordata decodes to %d bytes (%v), want the reason's first 1024", len(data), err)
	}
	if _, ok := metadata.ParseTime(one(metadata.CloudEventsTime)); !ok {
		t.Errorf("ce_time %q is not a time", one(metadata.CloudEventsTime))
	}
	if ct := one(metadata.ContentType); ct != "application/octet-stream" {
		t.Errorf("content-type %q, want application/octet-stream", ct)
	}
}
