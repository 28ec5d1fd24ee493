package kafka_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

// errorLog keeps the messages of the records logged at error level.
type errorLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *errorLog) Enabled(_ context.Context, level slog.Level) bool { return level >= slog.LevelError }
func (l *errorLog) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.msgs = append(l.msgs, r.Message)
	l.mu.Unlock()
	return nil
}
func (l *errorLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *errorLog) WithGroup(string) slog.Handler      { return l }

func (l *errorLog) has(substr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.msgs {
		if strings.Contains(m, substr) {
			return true
		}
	}
	return false
}

// TestCommitFailureDuringRevokeLogged: every offset commit fails while member A has
// handled the messages of 4 partitions; B joins, A hands partitions over and its
// commit of them fails: A logs it as an error, and B receives every message of the
// partitions it took (their offsets were never committed): 0 lost.
func TestCommitFailureDuringRevokeLogged(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.New(t)
	fake := cluster.RequireFake(t)
	topic := kafkatest.Topic("revokefail")
	var failing atomic.Bool
	failing.Store(true)
	fake.ControlKey(int16(kmsg.OffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
		fake.KeepControl()
		if !failing.Load() {
			return nil, nil, false
		}
		r := req.(*kmsg.OffsetCommitRequest)
		resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range r.Topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	logs := &errorLog{}
	cfg := kafka.Config{Partitions: 4, CommitInterval: time.Hour, SessionTimeout: 9 * time.Second, RebalanceTimeout: 6 * time.Second,
		Logger: slog.New(logs)}
	a := newTransport(t, cluster, cfg)
	const n = 200
	msgs := keyed(n, func(i int) string { return "k" + string(rune('a'+i%26)) })
	if err := a.Publish(topic, msgs...); err != nil {
		t.Fatal(err)
	}
	subA := subscribe(t, a, topic, transport.SubscribeOptions{Group: "g"})
	receive(t, subA, n, 20*time.Second)
	go func() {
		for m := range subA.Messages() {
			m.Ack()
		}
	}()

	cfg.Logger = nil
	b := newTransport(t, cluster, cfg)
	subB := subscribe(t, b, topic, transport.SubscribeOptions{Group: "g"})
	received := map[int32]map[string]bool{} // partition → payloads B received
	deadline := time.After(20 * time.Second)
	for quiet := false; !quiet; {
		select {
		case m := <-subB.Messages():
			p := offsetOf(t, m).Partition
			if received[p] == nil {
				received[p] = map[string]bool{}
			}
			received[p][string(m.Payload)] = true
			m.Ack()
		case <-time.After(2 * time.Second):
			quiet = len(received) > 0
		case <-deadline:
			t.Fatal("B received nothing within 20s of joining")
		}
	}
	if !waitFor(5*time.Second, func() bool { return logs.has("committing revoked partitions failed") }) {
		t.Errorf("A logged no error for the failed commit of its revoked partitions; errors logged: %v", logs.msgs)
	}
	// Nothing was committed: B has every message of each partition it took, from its
	// first offset.
	perPartition := map[int32]int{}
	for _, m := range msgs {
		perPartition[javaPartition(m.Metadata.Get(metadata.Key), 4)]++
	}
	for p, got := range received {
		if len(got) != perPartition[p] {
			t.Errorf("partition %d: B received %d of its %d messages; %d lost", p, len(got), perPartition[p], perPartition[p]-len(got))
		}
	}
	t.Logf("B took partitions %v and received all of their messages again", keysOf(received))
	failing.Store(false) // the members' last commits, as the test ends, succeed
}

func keysOf(m map[int32]map[string]bool) []int32 {
	var ks []int32
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
