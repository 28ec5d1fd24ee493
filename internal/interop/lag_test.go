package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"

	pubsub "github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/internal/kafkatest"
)

// position is a group's committed offset and the partition's end.
type position struct{ Committed, End int64 }

type positions map[int32]position

func (ps positions) String() string {
	var b strings.Builder
	for _, p := range slices.Sorted(maps.Keys(ps)) {
		fmt.Fprintf(&b, "[%d] committed %d end %d lag %d; ", p, ps[p].Committed, ps[p].End, ps[p].End-ps[p].Committed)
	}
	return b.String()
}

// TestLagMatchesLibrdkafka lets a pubsubkit group consume part of a topic and commit,
// publishes more, then reads the group's committed offsets and the topic's ends with
// librdkafka (Consumer.committed, get_watermark_offsets), kcat (-Q for the ends; a
// kcat member of the group starts at the committed offsets) and pubsubkit's own
// Client.Lag, and expects them all to agree, and with what Client.Health said in the
// consuming process before it stopped.
func TestLagMatchesLibrdkafka(t *testing.T) {
	t.Parallel()
	requirePython(t)
	requireTool(t, "kcat", "kcat")
	cluster := kafkatest.New(t)
	topic := kafkatest.Topic("lagging")
	const group = "billing"
	const partitions = 3
	createTopic(t, cluster, topic, partitions)
	adm := admin(t, cluster)
	ctx := context.Background()
	ends := func() map[int32]int64 {
		t.Helper()
		listed, err := adm.ListEndOffsets(ctx, topic)
		must(t, err)
		must(t, listed.Error())
		out := map[int32]int64{}
		listed.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
		return out
	}

	// The group consumes the first 20 messages and stops, committing them.
	consumer := openClient(t, cluster, "commit_interval=100ms")
	tp := pubsub.NewTopic[value](topic)
	for n := range 20 {
		must(t, pubsub.Publish(ctx, consumer, tp, value{N: n}, pubsub.WithMessageKey(fmt.Sprint("k-", n))))
	}
	s := newSink[value]()
	must(t, pubsub.Subscribe(consumer, tp, group, s.handle))
	run(t, consumer)
	s.wait(t, "the first 20 messages", atLeast[value](20))
	committed := ends()
	// pubsubkit's own view, in the consuming process, before it stops.
	health := func() positions {
		got := positions{}
		for _, h := range consumer.Health() {
			for _, p := range h.Partitions {
				got[p.Partition] = position{Committed: p.Committed, End: p.End}
			}
		}
		return got
	}
	caughtUp := positions{}
	for p, end := range committed {
		caughtUp[p] = position{Committed: end, End: end}
	}
	eventually(t, "Client.Health reports the group at the end of every partition", func() bool {
		return fmt.Sprint(health()) == fmt.Sprint(caughtUp)
	})
	must(t, consumer.Close())

	// Another producer adds 13 more.
	more := producer{Config: rdkafka(cluster, nil)}
	for n := 20; n < 33; n++ {
		more.Records = append(more.Records, record{Topic: topic, Key: str(fmt.Sprint("k-", n)), Value: str(value{N: n}.json())})
	}
	produceAll(t, more)
	want := positions{}
	for p, end := range ends() {
		want[p] = position{Committed: committed[p], End: end}
	}
	if len(want) != partitions {
		t.Fatalf("the topic has %d partitions, want %d", len(want), partitions)
	}

	compare := func(who string, got positions) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: %v\nwant %v", who, got, want)
		}
	}

	// pubsubkit, from a client that does not consume.
	observer := openClient(t, cluster, "")
	stats, err := observer.Lag(ctx, topic, group)
	switch {
	case err != nil:
		t.Fatalf("Client.Lag: %v", err)
	default:
		got := positions{}
		for _, p := range stats {
			got[p.Partition] = position{Committed: p.Committed, End: p.End}
			if p.Lag() != p.End-p.Committed {
				t.Errorf("Client.Lag partition %d: Lag() %d, want %d", p.Partition, p.Lag(), p.End-p.Committed)
			}
		}
		compare("pubsubkit Client.Lag", got)
	}

	// librdkafka.
	var report struct {
		Partitions []struct {
			Partition            int32
			Committed, Low, High int64
		}
	}
	must(t, json.Unmarshal(python(t, "lag.py", map[string]any{"config": rdkafka(cluster, nil), "topic": topic, "group": group}), &report))
	got := positions{}
	for _, p := range report.Partitions {
		got[p.Partition] = position{Committed: p.Committed, End: p.High}
	}
	compare("librdkafka committed and watermarks", got)

	// kcat: the ends by query, then the committed offsets as where a kcat member of
	// the group starts reading.
	args := []string{"-Q", "-J", "-q", "-b", brokers(cluster)}
	for p := range partitions {
		args = append(args, "-t", fmt.Sprintf("%s:%d:-1", topic, p))
	}
	// kcat -Q -J prints {"<topic>": {"topic": "<topic>", "<partition>": {"partition": p, "offset": o}, ...}}.
	var queried map[string]map[string]json.RawMessage
	out := kcat(t, args...)
	if err := json.Unmarshal(out, &queried); err != nil {
		t.Fatalf("kcat -Q printed %q: %v", out, err)
	}
	got = positions{}
	for name, raw := range queried[topic] {
		if name == "topic" {
			continue
		}
		var o struct {
			Partition int32 `json:"partition"`
			Offset    int64 `json:"offset"`
		}
		if err := json.Unmarshal(raw, &o); err != nil {
			t.Fatalf("kcat -Q printed %q: %v", out, err)
		}
		got[o.Partition] = position{Committed: want[o.Partition].Committed, End: o.Offset}
	}
	compare("kcat -Q ends", got)

	first := map[int32]int64{}
	lag := int64(0)
	for _, w := range want {
		lag += w.End - w.Committed
	}
	out = kcat(t, "-q", "-b", brokers(cluster), "-G", group, "-e", "-c", strconv.FormatInt(lag, 10),
		"-X", "auto.offset.reset=earliest", "-f", "%p %o\n", topic)
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var p int32
		var o int64
		if _, err := fmt.Sscanf(line, "%d %d", &p, &o); err != nil {
			t.Fatalf("kcat printed %q: %v", out, err)
		}
		if at, ok := first[p]; !ok || o < at {
			first[p] = o
		}
	}
	got = positions{}
	for p, w := range want {
		start, ok := first[p]
		if !ok {
			start = w.End // nothing left to read there
		}
		got[p] = position{Committed: start, End: w.End}
	}
	compare("kcat group member's first offsets", got)
	t.Logf("every reader agrees: %v", want)
}
