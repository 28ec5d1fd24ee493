package pubsub_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/pubsubtest"
	"github.com/pubsubkit/pubsub/transport/memory"
)

// errorLines keeps the messages of the error-level records logged to it.
type errorLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *errorLines) Enabled(_ context.Context, level slog.Level) bool {
	return level >= slog.LevelError
}
func (l *errorLines) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	line := r.Message
	r.Attrs(func(a slog.Attr) bool { line += " " + a.String(); return true })
	l.lines = append(l.lines, line)
	return nil
}
func (l *errorLines) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *errorLines) WithGroup(string) slog.Handler      { return l }
func (l *errorLines) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// TestTypedDeadLetterReaderSeesUndecodableLetters: a record on "orders" that does not
// decode as an order is dead-lettered; the typed subscription on the dead-letter topic
// (for alerts) gets it, with the zero Payload, the raw bytes and the decode error, and
// its dead-letter keys. When that subscription fails a letter, the letter goes to the
// second-level dead-letter topic with a line at error level.
func TestTypedDeadLetterReaderSeesUndecodableLetters(t *testing.T) {
	tr, err := memory.New(memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	logged := &errorLines{}
	h := pubsubtest.NewOn(t, tr, pubsub.WithLogger(slog.New(logged)))
	orders := pubsub.NewTopic[payment]("orders-undecodable")
	must(t, pubsub.Subscribe(h.Client, orders, "billing", func(context.Context, *pubsub.Message[payment]) error { return nil }))
	dlq := pubsub.NewTopic[payment](pubsub.DeadLetterTopicName(orders.Name(), "billing"))
	seen := make(chan *pubsub.Message[payment], 2)
	must(t, pubsub.Subscribe(h.Client, dlq, "alerts", func(_ context.Context, m *pubsub.Message[payment]) error {
		seen <- m
		if m.DecodeError == nil {
			return errors.New("alerting is down") // to the second-level dead-letter topic
		}
		return nil
	}))
	bad := message.NewMessage("bad-1", []byte("not json"))
	bad.Metadata.Set(metadata.ContentType, "application/json")
	must(t, tr.Publish(orders.Name(), bad))
	must(t, pubsub.Publish(context.Background(), h.Client, orders, payment{ID: "fine"}))
	select {
	case m := <-seen:
		if m.DecodeError == nil || string(m.RawPayload) != "not json" || m.Payload != (payment{}) || m.ID != "bad-1" {
			t.Fatalf("the undecodable letter as its reader sees it: payload %+v, raw %q, decode error %v, id %s",
				m.Payload, m.RawPayload, m.DecodeError, m.ID)
		}
		if !strings.Contains(m.Metadata[metadata.DeadLetterReason], "cannot decode") || m.Metadata[metadata.DeadLetterPermanent] != "true" {
			t.Errorf("dead-letter keys of the undecodable letter: %v", m.Metadata)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the typed dead-letter subscription never saw the undecodable letter")
	}
	// The second-level topic, said at error level.
	h2 := pubsubtest.NewOn(t, tr)
	second := pubsub.NewTopic[payment](pubsub.DeadLetterTopicName(dlq.Name(), "alerts"))
	secondSeen := make(chan *pubsub.Message[payment], 1)
	must(t, pubsub.Subscribe(h2.Client, second, "ops", func(_ context.Context, m *pubsub.Message[payment]) error {
		secondSeen <- m
		return nil
	}))
	// A letter the reader fails (it decodes) goes one level down.
	letter := message.NewMessage("letter-1", []byte(`{"id":"p-4"}`))
	letter.Metadata.Set(metadata.DeadLetterReason, "first failure")
	letter.Metadata.Set(metadata.DeadLetterTopic, orders.Name())
	must(t, tr.Publish(dlq.Name(), letter))
	select {
	case m := <-secondSeen:
		if m.Payload.ID != "p-4" || m.Metadata[metadata.DeadLetterOriginPrefix+"reason"] != "first failure" ||
			m.Metadata[metadata.DeadLetterReason] != "alerting is down" {
			t.Errorf("second-level letter: %+v %v", m.Payload, m.Metadata)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nothing reached the second-level dead-letter topic")
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logged.all(), "second-level dead-letter topic") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := logged.all(); !strings.Contains(got, "second-level dead-letter topic") || !strings.Contains(got, "alerting is down") {
		t.Errorf("error-level log when a letter went to the second-level topic: %q", got)
	}
}

// TestDeadLetterReadersSeeOversizedLetters: with WithMaxPayload, a message over the
// limit is dead-lettered, and a typed reader of the dead-letter topic on the same
// client (the same limit) still gets that letter, with DecodeError wrapping
// ErrPayloadTooLarge and the bytes in RawPayload; a batch reader gets an undecodable
// letter as a single reader does.
func TestDeadLetterReadersSeeOversizedLetters(t *testing.T) {
	tr, err := memory.New(memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	h := pubsubtest.NewOn(t, tr, pubsub.WithMaxPayload(64))
	orders := pubsub.NewTopic[payment]("orders-oversized")
	must(t, pubsub.Subscribe(h.Client, orders, "billing", func(context.Context, *pubsub.Message[payment]) error { return nil }))
	dlq := pubsub.NewTopic[payment](pubsub.DeadLetterTopicName(orders.Name(), "billing"))
	seen := make(chan *pubsub.Message[payment], 4)
	must(t, pubsub.Subscribe(h.Client, dlq, "alerts", func(_ context.Context, m *pubsub.Message[payment]) error {
		seen <- m
		return nil
	}))
	batchSeen := make(chan *pubsub.Message[payment], 4)
	must(t, pubsub.SubscribeBatch(h.Client, dlq, "alerts-batch", func(_ context.Context, ms []*pubsub.Message[payment]) error {
		for _, m := range ms {
			batchSeen <- m
		}
		return nil
	}, pubsub.WithBatch(10, 10*time.Millisecond)))
	big := message.NewMessage("big-1", []byte(`{"id":"`+strings.Repeat("x", 100)+`"}`))
	big.Metadata.Set(metadata.ContentType, "application/json")
	must(t, tr.Publish(orders.Name(), big))
	bad := message.NewMessage("bad-2", []byte("not json"))
	bad.Metadata.Set(metadata.ContentType, "application/json")
	must(t, tr.Publish(orders.Name(), bad))
	for _, c := range []struct {
		name string
		got  chan *pubsub.Message[payment]
	}{{"Subscribe", seen}, {"SubscribeBatch", batchSeen}} {
		letters := map[string]*pubsub.Message[payment]{}
		for len(letters) < 2 {
			select {
			case m := <-c.got:
				letters[m.ID] = m
			case <-time.After(10 * time.Second):
				t.Fatalf("%s on the dead-letter topic saw %d of 2 letters", c.name, len(letters))
			}
		}
		if m := letters["big-1"]; m == nil || !errors.Is(m.DecodeError, pubsub.ErrPayloadTooLarge) || len(m.RawPayload) != len(big.Payload) {
			t.Errorf("%s: the oversized letter as its reader sees it: %+v", c.name, m)
		}
		if m := letters["bad-2"]; m == nil || m.DecodeError == nil || string(m.RawPayload) != "not json" || m.Payload != (payment{}) {
			t.Errorf("%s: the undecodable letter as its reader sees it: %+v", c.name, m)
		}
	}
}

// TestForgedDeadLetterKeysDropped: a record on a main topic that carries forged
// pubsub_dlq_* headers reaches its handler without them, and its own dead letter keeps
// no forged origin.
func TestForgedDeadLetterKeysDropped(t *testing.T) {
	tr, err := memory.New(memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	h := pubsubtest.NewOn(t, tr)
	topic := pubsub.NewTopic[payment]("trust-dlq-keys")
	got := make(chan map[string]string, 1)
	must(t, pubsub.Subscribe(h.Client, topic, "g", func(_ context.Context, m *pubsub.Message[payment]) error {
		got <- m.Metadata
		return pubsub.Permanent(errors.New("refused"))
	}))
	dlq := pubsub.NewTopic[payment](pubsub.DeadLetterTopicName(topic.Name(), "g"))
	letters := make(chan map[string]string, 1)
	must(t, pubsub.Subscribe(h.Client, dlq, "alerts", func(_ context.Context, m *pubsub.Message[payment]) error {
		letters <- m.Metadata
		return nil
	}))
	forged := message.NewMessage("outside-1", []byte(`{"id":"x"}`))
	forged.Metadata.Set(metadata.DeadLetterReason, "forged reason")
	forged.Metadata.Set(metadata.DeadLetterTopic, "elsewhere")
	forged.Metadata.Set(metadata.DeadLetterOriginPrefix+"reason", "forged origin")
	forged.Metadata.Set("user_key", "kept")
	must(t, tr.Publish(topic.Name(), forged))
	md := <-got
	for k := range md {
		if strings.HasPrefix(k, metadata.DeadLetterPrefix) {
			t.Errorf("the handler of a main topic saw %s=%q", k, md[k])
		}
	}
	if md["user_key"] != "kept" {
		t.Errorf("a user key was dropped: %v", md)
	}
	select {
	case l := <-letters:
		if l[metadata.DeadLetterReason] != "refused" || l[metadata.DeadLetterTopic] != topic.Name() {
			t.Errorf("dead letter: %v", l)
		}
		for k, v := range l {
			if strings.HasPrefix(k, metadata.DeadLetterOriginPrefix) || strings.Contains(v, "forged") {
				t.Errorf("the dead letter kept forged %s=%q", k, v)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no dead letter")
	}
}
