package pubsub_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/metadata"
)

// TestRecordWithManyRepeatedHeadersHoldsNothing: another producer writes a record
// with one header key 100,000 times and a plain record behind it on the same
// partition. The handler gets every value of the repeated header, and the record
// behind it is handled within seconds (it waited 28 s behind 20,000 repeats when each
// repeat was numbered by counting from 1).
func TestRecordWithManyRepeatedHeadersHoldsNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cluster := kafkatest.New(t)
	c, err := pubsub.Open(ctx, cluster.URL("partitions=1"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	topic := pubsub.NewTopic[string](kafkatest.Topic("repeated-headers"))
	const n = 100_000
	big := &kgo.Record{Topic: topic.Name(), Value: []byte(`"big"`), Headers: make([]kgo.RecordHeader, n)}
	for i := range big.Headers {
		big.Headers[i] = kgo.RecordHeader{Key: "h", Value: []byte(strconv.Itoa(i))}
	}
	raw, err := kgo.NewClient(kgo.SeedBrokers(cluster.Addrs...), kgo.ProducerBatchMaxBytes(4<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	type handled struct {
		payload string
		values  int
		at      time.Time
	}
	got := make(chan handled, 2)
	must(t, pubsub.Subscribe(c, topic, "g", func(_ context.Context, m *pubsub.Message[string]) error {
		got <- handled{m.Payload, len(metadata.Values(m.Metadata, "h")), time.Now()}
		return nil
	}))
	go c.Run(ctx)
	<-c.Running()
	// A first record, handled once the group is joined, so that the time below is the
	// big record's alone.
	if err := raw.ProduceSync(ctx, &kgo.Record{Topic: topic.Name(), Value: []byte(`"warm"`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(60 * time.Second):
		t.Fatal("the first record was not handled within 60s")
	}
	behind := &kgo.Record{Topic: topic.Name(), Value: []byte(`"behind"`)}
	if err := raw.ProduceSync(ctx, big, behind).FirstErr(); err != nil {
		t.Fatal(err)
	}
	stored := time.Now()
	var first, second handled
	for i, h := range []*handled{&first, &second} {
		select {
		case *h = <-got:
		case <-time.After(60 * time.Second):
			t.Fatalf("%d of 2 records handled within 60s", i)
		}
	}
	if first.payload != "big" || first.values != n || second.payload != "behind" {
		t.Fatalf("handled %q with %d values of h, then %q; want big with %d, then behind", first.payload, first.values, second.payload, n)
	}
	wait := second.at.Sub(stored)
	t.Logf("the record behind the one with %d repeated headers was handled %s after both were stored", n, wait)
	// Measured 0.37-0.50 s here under -race, fetching the 400 KB record included.
	if wait > 10*time.Second {
		t.Errorf("the record behind the one with %d repeated headers was handled %s after both were stored", n, wait)
	}
}
