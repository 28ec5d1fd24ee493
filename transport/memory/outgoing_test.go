package memory_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/memory"
)

// settled is a transport.Settler that keeps the error it is given.
type settled chan error

func (s settled) Settle(err error) { s <- err }

// TestOutgoingIsStoredAsPublished: an Outgoing message reaches a group, and a reader,
// as the same message in Watermill's form would: its id, its payload, every header as
// metadata and the key as metadata.Key. The caller's id, key and header bytes are
// copied: writing over them after the publish changes nothing stored.
func TestOutgoingIsStoredAsPublished(t *testing.T) {
	tr := newTransport(t, memory.Config{})
	ctx := context.Background()
	published := time.Date(2026, 12, 6, 22, 0, 0, 0, time.UTC)
	id, key := []byte("0193a0b2-0000-7000-8000-000000000001"), []byte("order-7")
	ct, corr := []byte("application/json"), []byte("conv-1")
	out := &transport.Outgoing{ID: id, Key: key, Payload: []byte(`{"n":1}`), Time: published,
		Headers: []transport.Header{{Key: metadata.ContentType, Value: ct}, {Key: metadata.CorrelationID, Value: corr}}}
	if err := tr.PublishOutgoing(ctx, "t", out); err != nil {
		t.Fatal(err)
	}
	done := make(settled, 1)
	second := &transport.Outgoing{ID: []byte("second"), Payload: []byte("2")}
	tr.PublishOutgoingAsync(ctx, "t", second, done)
	if err := <-done; err != nil {
		t.Fatalf("PublishOutgoingAsync settled with %v", err)
	}
	for _, b := range [][]byte{id, key, ct, corr, second.ID} {
		for i := range b {
			b[i] = '#'
		}
	}

	msgs := subscribe(t, tr, ctx, "t", "g")
	want := message.Metadata{metadata.ContentType: "application/json", metadata.CorrelationID: "conv-1", metadata.Key: "order-7"}
	for _, w := range []struct {
		id, payload string
		md          message.Metadata
	}{{"0193a0b2-0000-7000-8000-000000000001", `{"n":1}`, want}, {"second", "2", message.Metadata{}}} {
		select {
		case msg := <-msgs:
			if msg.UUID != w.id || string(msg.Payload) != w.payload || !maps.Equal(msg.Metadata, w.md) {
				t.Errorf("delivered %s %q %v, want %s %q %v", msg.UUID, msg.Payload, msg.Metadata, w.id, w.payload, w.md)
			}
			msg.Metadata["changed"] = "by a handler"
			msg.Ack()
		case <-time.After(10 * time.Second):
			t.Fatalf("message %s not delivered", w.id)
		}
	}

	read, err := tr.ReadAt(ctx, "t", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if read.UUID != "0193a0b2-0000-7000-8000-000000000001" || !maps.Equal(read.Metadata, want) {
		t.Errorf("ReadAt: %s %v, want the message as published", read.UUID, read.Metadata)
	}
	if pos, ok := transport.PositionFrom(read.Context()); !ok || !pos.Time.Equal(published) {
		t.Errorf("ReadAt position %+v, want the Outgoing's time %s", pos, published)
	}
}

// TestOutgoingKeepsTheBounds: an Outgoing message counts against the retention bounds
// as a Watermill one does, and one too large is refused with ErrMessageTooLarge.
func TestOutgoingKeepsTheBounds(t *testing.T) {
	tr := newTransport(t, memory.Config{MaxRetainedBytes: 100, FullTimeout: 50 * time.Millisecond})
	ctx := context.Background()
	big := &transport.Outgoing{ID: []byte("big"), Payload: make([]byte, 101)}
	if err := tr.PublishOutgoing(ctx, "t", big); !errors.Is(err, transport.ErrMessageTooLarge) {
		t.Fatalf("101 bytes on a 100-byte topic: %v, want ErrMessageTooLarge", err)
	}
	subCtx, pause := context.WithCancel(ctx)
	subscribe(t, tr, subCtx, "t", "g")
	pause() // the group holds every message back
	fill := &transport.Outgoing{ID: []byte("fill"), Payload: make([]byte, 40),
		Headers: []transport.Header{{Key: "k", Value: make([]byte, 5)}}} // 4 + 40 + 1 + 5 = 50 bytes
	for range 2 {
		if err := tr.PublishOutgoing(ctx, "t", fill); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.PublishOutgoing(ctx, "t", &transport.Outgoing{ID: []byte("x")}); !errors.Is(err, memory.ErrTopicFull) {
		t.Fatalf("a byte past the bound: %v, want ErrTopicFull", err)
	}
}

// TestOutgoingKeyOrders: the key of an Outgoing message orders its deliveries as
// metadata.Key orders a Watermill message's: with Concurrency 2, the second message of
// a key is not delivered while the first is in flight, and a message of another key
// is.
func TestOutgoingKeyOrders(t *testing.T) {
	tr := newTransport(t, memory.Config{})
	ctx := context.Background()
	for _, m := range []struct{ id, key string }{{"a1", "a"}, {"a2", "a"}, {"b1", "b"}} {
		if err := tr.PublishOutgoing(ctx, "t", &transport.Outgoing{ID: []byte(m.id), Key: []byte(m.key)}); err != nil {
			t.Fatal(err)
		}
	}
	sub, err := tr.Subscribe(ctx, "t", transport.SubscribeOptions{Group: "g", Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	next := func() *message.Message {
		t.Helper()
		select {
		case msg := <-sub.Messages():
			return msg
		case <-time.After(10 * time.Second):
			t.Fatal("no delivery")
			return nil
		}
	}
	// Two workers take a message each, in either order: a1 and b1, never a2 while a1
	// is in flight.
	got := map[string]*message.Message{}
	for range 2 {
		msg := next()
		got[msg.UUID] = msg
	}
	if got["a1"] == nil || got["b1"] == nil {
		t.Fatalf("delivered %v while a1 is in flight; want a1 and b1 (a2 waits for a1)", slices.Sorted(maps.Keys(got)))
	}
	got["a1"].Ack()
	third := next()
	if third.UUID != "a2" {
		t.Fatalf("after a1, %s; want a2", third.UUID)
	}
	got["b1"].Ack()
	third.Ack()
}

// TestOutgoingOnAClosedTransport: a publish after Close fails with ErrClosed, and
// PublishOutgoingAsync settles once with it.
func TestOutgoingOnAClosedTransport(t *testing.T) {
	tr := newTransport(t, memory.Config{})
	tr.Close()
	m := &transport.Outgoing{ID: []byte("late")}
	if err := tr.PublishOutgoing(context.Background(), "t", m); !errors.Is(err, transport.ErrClosed) {
		t.Errorf("PublishOutgoing after Close: %v, want ErrClosed", err)
	}
	done := make(settled, 2)
	tr.PublishOutgoingAsync(context.Background(), "t", m, done)
	if err := <-done; !errors.Is(err, transport.ErrClosed) {
		t.Errorf("PublishOutgoingAsync after Close settled with %v, want ErrClosed", err)
	}
	if len(done) != 0 {
		t.Error("PublishOutgoingAsync settled twice")
	}
}
