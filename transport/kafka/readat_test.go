package kafka_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

// TestReadAtReadsOneRecord: ReadAt returns the record at a partition and offset with
// its position; a position beyond the end or before the start, or a missing topic,
// is an error that says so, at once.
func TestReadAtReadsOneRecord(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.New(t)
	tr := newTransport(t, cluster, kafka.Config{Partitions: 2})
	topic := kafkatest.Topic("readat")
	if err := tr.Provision(context.Background(), topic); err != nil {
		t.Fatal(err)
	}
	raw := rawClient(t, cluster, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produceTo(t, raw, topic, 0, 3)
	produceTo(t, raw, topic, 1, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := tr.ReadAt(ctx, topic, 1, 3)
	if err != nil || string(m.Payload) != "v3" {
		t.Fatalf("ReadAt(1, 3): %v, %v", m, err)
	}
	if p, ok := transport.PositionFrom(m.Context()); !ok || p.Partition != 1 || p.Offset != 3 {
		t.Fatalf("position of ReadAt(1, 3): %+v, %v", p, ok)
	}
	for _, at := range [][2]int64{{0, 3}, {1, -1}, {2, 0}} {
		if _, err := tr.ReadAt(ctx, topic, int32(at[0]), at[1]); !errors.Is(err, transport.ErrNoRecord) {
			t.Fatalf("ReadAt(%d, %d): %v, want ErrNoRecord", at[0], at[1], err)
		}
	}
	if _, err := tr.ReadAt(ctx, kafkatest.Topic("missing"), 0, 0); !errors.Is(err, transport.ErrUnknownTopic) {
		t.Fatalf("ReadAt of a missing topic: %v", err)
	}
}
