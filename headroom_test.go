package pubsub_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

// levelLog keeps every record logged, with its level.
type levelLog struct {
	mu      sync.Mutex
	records []slog.Record
}

func (l *levelLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *levelLog) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.records = append(l.records, r.Clone())
	l.mu.Unlock()
	return nil
}
func (l *levelLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *levelLog) WithGroup(string) slog.Handler      { return l }

// count returns how many records at level mention every one of words in their
// message or attributes.
func (l *levelLog) count(level slog.Level, words ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.records {
		text := r.Message
		r.Attrs(func(a slog.Attr) bool { text += " " + a.String(); return true })
		if r.Level != level {
			continue
		}
		all := true
		for _, w := range words {
			all = all && strings.Contains(text, w)
		}
		if all {
			n++
		}
	}
	return n
}

// TestDeadLetterHeadroomWarning: a topic made by other tooling with Kafka's default
// max.message.bytes, whose dead-letter topic the client creates, gets no warning
// (a note at debug level, once however many subscriptions it has); a dead-letter topic
// made with Kafka's default, too small for the dead letter of a message near the
// limit, gets a warning that names it and says what happens and what to raise.
func TestDeadLetterHeadroomWarning(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.New(t)
	ctx := context.Background()
	source := kafkatest.Topic("headroom-src")
	tightDLQ := kafkatest.Topic("headroom-tight-dlq")
	raw, err := kgo.NewClient(kgo.SeedBrokers(cluster.Addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	kafkaDefault := "1048588"
	for _, topic := range []string{source, tightDLQ} {
		if _, err := kadm.NewClient(raw).CreateTopic(ctx, 1, 3, map[string]*string{"max.message.bytes": &kafkaDefault, "min.insync.replicas": kadm.StringPtr("2")}, topic); err != nil {
			t.Fatal(err)
		}
	}
	log := &levelLog{}
	tr, err := kafka.New(ctx, kafka.Config{Brokers: cluster.Addrs, Logger: slog.New(log)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := pubsub.New(tr, pubsub.WithLogger(slog.New(log)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tp := pubsub.NewTopic[counted](source)
	nothing := func(context.Context, *pubsub.Message[counted]) error { return nil }

	must(t, pubsub.Subscribe(c, tp, "a", nothing))
	must(t, pubsub.Subscribe(c, tp, "b", nothing))
	if n := log.count(slog.LevelWarn, "dead-letter"); n != 0 {
		t.Errorf("%d warnings about dead-letter room for a topic whose dead-letter topics take its largest messages", n)
	}
	if n := log.count(slog.LevelDebug, "max.message.bytes", source); n != 1 {
		t.Errorf("%d debug notes of the source topic's max.message.bytes, want 1 for two subscriptions", n)
	}

	must(t, pubsub.Subscribe(c, tp, "c", nothing, pubsub.WithDelivery(pubsub.Delivery{DeadLetterTopic: tightDLQ})))
	if n := log.count(slog.LevelWarn, "could not be dead-lettered whole", "without its payload", tightDLQ, "want_bytes=1081344"); n != 1 {
		t.Errorf("%d warnings naming the too small dead-letter topic, want 1", n)
	}
}
