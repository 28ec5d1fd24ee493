package interop

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	pubsub "github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/codec"
	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/metadata"
)

// TestRecordsFromLibrdkafka produces with librdkafka (plain records with and without
// keys and headers, every compression codec, a transaction that aborts a record) and
// consumes with three pubsubkit groups: each record's id, key, headers, time and
// correlation id come from the record, and every group and redelivery agrees on them, the aborted record never arrives, and a record
// whose content-type the codec does not read is dead-lettered, not handled.
func TestRecordsFromLibrdkafka(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.New(t)
	topic := kafkatest.Topic("from-rdkafka")
	createTopic(t, cluster, topic, 3)

	client := openClient(t, cluster, "")
	tp := pubsub.NewTopic[value](topic)
	groups := map[string]*sink[value]{"g1": newSink[value](), "g2": newSink[value]()}
	for g, s := range groups {
		must(t, pubsub.Subscribe(client, tp, g, s.handle))
	}
	// A third group fails every first attempt: the redelivery must carry the same id
	// and correlation id.
	retried := newSink[value]()
	must(t, pubsub.Subscribe(client, tp, "g3", func(ctx context.Context, m *pubsub.Message[value]) error {
		retried.add(m)
		if m.Attempt == 1 {
			return errors.New("first attempts fail")
		}
		return nil
	}, pubsub.WithDelivery(pubsub.Delivery{Retry: 1, BackoffDelay: 5 * time.Millisecond})))
	dead := newSink[[]byte]()
	dlq := pubsub.NewTopic[[]byte](pubsub.DeadLetterTopicName(topic, "g1"), pubsub.WithCodec(codec.Raw))
	must(t, pubsub.Subscribe(client, dlq, "watch", dead.handle))
	run(t, client)

	rec := func(n int, key string, headers ...[2]string) record {
		r := record{Topic: topic, Value: str(value{N: n}.json()), Headers: headers}
		if key != "" {
			r.Key = str(key)
		}
		return r
	}
	plain := producer{Config: rdkafka(cluster, map[string]any{"enable.idempotence": true}), Records: []record{
		rec(1, ""),
		rec(2, "k-2", [2]string{"h1", "v1"}, [2]string{"content-type", "application/json"}),
		rec(3, "k-3", [2]string{"h1", "v3"}, [2]string{"h2", ""}, [2]string{metadata.CorrelationID, "cid-3"}),
		rec(4, "k-4", [2]string{"content-type", "application/xml"}),
	}}
	producers := []producer{plain}
	codecs := []string{"gzip", "snappy", "lz4", "zstd"}
	for i, c := range codecs {
		producers = append(producers, producer{
			Config:  rdkafka(cluster, map[string]any{"compression.type": c, "linger.ms": 20}),
			Records: []record{rec(10+2*i, c+"-a"), rec(11+2*i, c+"-b")},
		})
	}
	inTxn := func(n int) record { r := rec(n, ""); r.Partition = part(0); return r }
	producers = append(producers, producer{
		Config: rdkafka(cluster, map[string]any{"transactional.id": "interop-" + topic}),
		Transactions: []transaction{
			{Commit: true, Records: []record{inTxn(100), inTxn(101)}},
			{Commit: false, Records: []record{inTxn(102)}},
			{Commit: true, Records: []record{inTxn(103)}},
		},
	})
	reports := produceAll(t, producers...)

	// n → where librdkafka stored it.
	where := map[int]stored{}
	for _, r := range reports {
		var v value
		spec := producers[r.Producer]
		if spec.Transactions != nil {
			v.N = 100 + r.Index
		} else {
			mustJSON(t, *spec.Records[r.Index].Value, &v)
		}
		where[v.N] = r
	}
	want := []int{1, 2, 3, 10, 11, 12, 13, 14, 15, 16, 17, 100, 101, 103}
	if len(where) != len(want)+2 {
		t.Fatalf("librdkafka stored %d records, want %d: %v", len(where), len(want)+2, reports)
	}

	byN := map[string]map[int]*pubsub.Message[value]{}
	for g, s := range groups {
		got := s.wait(t, "the records in group "+g, func(ms []*pubsub.Message[value]) bool {
			return hasAll(ms, want)
		})
		byN[g] = map[int]*pubsub.Message[value]{}
		for _, m := range got {
			if m.Payload.N == 102 {
				t.Errorf("group %s: the record of the aborted transaction reached the handler: %+v", g, m)
			}
			if m.Payload.N == 4 {
				t.Errorf("group %s: a record with content-type application/xml reached a JSON handler: %+v", g, m)
			}
			byN[g][m.Payload.N] = m
		}
	}

	for _, n := range want {
		m, at := byN["g1"][n], where[n]
		if m.ID != at.id() {
			t.Errorf("n=%d: ID %q, want %q (topic-partition-offset)", n, m.ID, at.id())
		}
		if m.Topic != topic || m.Attempt != 1 {
			t.Errorf("n=%d: Topic %q Attempt %d, want %q 1", n, m.Topic, m.Attempt, topic)
		}
		if wantAt := time.UnixMilli(at.Timestamp); !m.PublishedAt.Equal(wantAt) {
			t.Errorf("n=%d: PublishedAt %v, want the record timestamp %v", n, m.PublishedAt, wantAt)
		}
		if m.CorrelationID == "" {
			t.Errorf("n=%d: no correlation id", n)
		}
		if other := byN["g2"][n]; other.ID != m.ID || other.CorrelationID != m.CorrelationID ||
			!other.PublishedAt.Equal(m.PublishedAt) || other.Key != m.Key {
			t.Errorf("n=%d: groups disagree: g1 %+v, g2 %+v", n, m, other)
		}
	}
	again := retried.wait(t, "two attempts of every record in group g3", atLeast[value](2*len(want)))
	for _, m := range again {
		if first := byN["g1"][m.Payload.N]; first != nil && (m.ID != first.ID || m.CorrelationID != first.CorrelationID) {
			t.Errorf("n=%d attempt %d in g3: id %q cid %q, g1 had %q %q", m.Payload.N, m.Attempt, m.ID, m.CorrelationID, first.ID, first.CorrelationID)
		}
	}
	checkKey := func(n int, key string) {
		if got := byN["g1"][n].Key; got != key {
			t.Errorf("n=%d: Key %q, want %q", n, got, key)
		}
	}
	checkKey(1, "")
	checkKey(2, "k-2")
	checkKey(3, "k-3")
	for i, c := range codecs {
		checkKey(10+2*i, c+"-a")
		checkKey(11+2*i, c+"-b")
	}
	checkMetadata := func(n int, want map[string]string) {
		if got := byN["g1"][n].Metadata; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("n=%d: Metadata %v, want %v", n, got, want)
		}
	}
	checkMetadata(1, map[string]string{})
	checkMetadata(2, map[string]string{"h1": "v1"})
	checkMetadata(3, map[string]string{"h1": "v3", "h2": ""})
	if got := byN["g1"][3].CorrelationID; got != "cid-3" {
		t.Errorf("n=3: CorrelationID %q, want cid-3 from its %s header", got, metadata.CorrelationID)
	}

	letters := dead.wait(t, "the dead letter of the application/xml record", atLeast[[]byte](1))
	l := letters[0]
	if string(l.Payload) != (value{N: 4}).json() || l.Key != "k-4" {
		t.Errorf("dead letter %q key %q, want the application/xml record", l.Payload, l.Key)
	}
	if r := l.Metadata[metadata.DeadLetterReason]; !strings.Contains(r, "application/xml") || l.Metadata[metadata.DeadLetterPermanent] != "true" {
		t.Errorf("dead letter reason %q permanent %q, want a permanent failure naming the content type", r, l.Metadata[metadata.DeadLetterPermanent])
	}
}

// hasAll reports whether ms hold a payload for each n of want.
func hasAll(ms []*pubsub.Message[value], want []int) bool {
	seen := map[int]bool{}
	for _, m := range ms {
		seen[m.Payload.N] = true
	}
	for _, n := range want {
		if !seen[n] {
			return false
		}
	}
	return true
}

// TestRecordsFromKcat produces with kcat -P (a key, headers, and a record without
// either) and consumes with pubsubkit: key, metadata and payload arrive as sent.
func TestRecordsFromKcat(t *testing.T) {
	t.Parallel()
	requireTool(t, "kcat", "kcat")
	cluster := kafkatest.New(t)
	topic := kafkatest.Topic("from-kcat")
	createTopic(t, cluster, topic, 3)
	client := openClient(t, cluster, "")
	s := newSink[value]()
	must(t, pubsub.Subscribe(client, pubsub.NewTopic[value](topic), "g", s.handle))
	run(t, client)

	kcatWithInput(t, value{N: 1}.json()+"\n", "-P", "-b", brokers(cluster), "-t", topic, "-p", "0")
	kcatWithInput(t, "k-2\t"+value{N: 2}.json()+"\n", "-P", "-b", brokers(cluster), "-t", topic, "-K", "\t",
		"-H", "h1=v1", "-H", "content-type=application/json")

	got := s.wait(t, "two records from kcat", atLeast[value](2))
	byN := map[int]*pubsub.Message[value]{}
	for _, m := range got {
		byN[m.Payload.N] = m
	}
	if m := byN[1]; m == nil || m.Key != "" || len(m.Metadata) != 0 || m.ID != topic+"-0-0" {
		t.Errorf("record without key or headers: %+v", m)
	}
	if m := byN[2]; m == nil || m.Key != "k-2" || fmt.Sprint(m.Metadata) != fmt.Sprint(map[string]string{"h1": "v1"}) {
		t.Errorf("record with key k-2 and header h1=v1: %+v", m)
	}
}
