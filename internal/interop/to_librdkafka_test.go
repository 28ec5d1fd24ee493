package interop

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	pubsub "github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

// kcatRecord is one record as kcat -J prints it.
type kcatRecord struct {
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Key       *string   `json:"key"`
	Payload   *string   `json:"payload"`
	Headers   []*string `json:"headers"` // name, value, name, value...
}

// consumed turns the record into consume.py's form.
func (k kcatRecord) consumed() consumed {
	c := consumed{Topic: k.Topic, Partition: k.Partition, Offset: k.Offset, Key: k.Key, Value: k.Payload}
	for i := 0; i+1 < len(k.Headers); i += 2 {
		c.Headers = append(c.Headers, [2]*string{k.Headers[i], k.Headers[i+1]})
	}
	return c
}

// TestRecordsToLibrdkafka publishes with pubsubkit and reads the records back with
// kcat and with librdkafka: the value is the JSON payload, the key is the record key
// (and is not repeated in a header), and the headers carry the standard content-type,
// the metadata and the correlation id.
func TestRecordsToLibrdkafka(t *testing.T) {
	t.Parallel()
	requirePython(t)
	requireTool(t, "kcat", "kcat")
	cluster := kafkatest.New(t)
	topic := kafkatest.Topic("to-rdkafka")
	client := openClient(t, cluster, "partitions=3")
	tp := pubsub.NewTopic[value](topic)
	ctx := context.Background()
	must(t, pubsub.Publish(ctx, client, tp, value{N: 1}, pubsub.WithMessageKey("k-1"),
		pubsub.WithMetadata("h1", "v1"), pubsub.WithCorrelationID("cid-1")))
	must(t, pubsub.Publish(ctx, client, tp, value{N: 2}))

	var fromKcat []consumed
	for _, line := range jsonLines[kcatRecord](t, kcat(t, "-C", "-q", "-b", brokers(cluster), "-t", topic,
		"-o", "beginning", "-e", "-c", "2", "-J")) {
		fromKcat = append(fromKcat, line.consumed())
	}
	fromPython := consumeAll(t, rdkafka(cluster, nil), 2, topic)
	for name, records := range map[string][]consumed{"kcat": fromKcat, "librdkafka": fromPython} {
		if len(records) != 2 {
			t.Fatalf("%s read %d records, want 2: %+v", name, len(records), records)
		}
		for _, r := range records {
			var v value
			if r.Value == nil {
				t.Fatalf("%s: a record without a value: %+v", name, r)
			}
			mustJSON(t, *r.Value, &v)
			if got := r.header(metadata.ContentType); !slices.Equal(got, []string{"application/json"}) {
				t.Errorf("%s n=%d: content-type headers %q, want [application/json]", name, v.N, got)
			}
			if got := r.header(metadata.Key); got != nil {
				t.Errorf("%s n=%d: the key is repeated in header %s: %q", name, v.N, metadata.Key, got)
			}
			if got := r.header(kafka.UUIDHeader); len(got) != 1 || got[0] == "" {
				t.Errorf("%s n=%d: message id header %s is %q", name, v.N, kafka.UUIDHeader, got)
			}
			switch v.N {
			case 1:
				if r.Key == nil || *r.Key != "k-1" {
					t.Errorf("%s n=1: record key %v, want k-1", name, r.Key)
				}
				if got := r.header("h1"); !slices.Equal(got, []string{"v1"}) {
					t.Errorf("%s n=1: header h1 %q, want [v1]", name, got)
				}
				if got := r.header(metadata.CorrelationID); !slices.Equal(got, []string{"cid-1"}) {
					t.Errorf("%s n=1: header %s %q, want [cid-1]", name, metadata.CorrelationID, got)
				}
			case 2:
				if r.Key != nil {
					t.Errorf("%s n=2: record key %q, want none", name, *r.Key)
				}
			default:
				t.Errorf("%s: unexpected record %s", name, mustMarshal(v))
			}
		}
	}
}

func mustMarshal(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
