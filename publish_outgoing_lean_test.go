package pubsub_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/codec"
	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/middleware"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/memory"
)

// outgoingRecorder is a transport that takes transport.Outgoing messages and settles
// each at once, keeping a copy of the last one.
type outgoingRecorder struct {
	*memory.Transport
	last transport.Outgoing
	keep bool
	fail string // a payload settled with errRefused
}

var errRefused = errors.New("refused")

func (r *outgoingRecorder) PublishOutgoingAsync(_ context.Context, _ string, m *transport.Outgoing, done transport.Settler) {
	r.record(m)
	if r.fail != "" && string(m.Payload) == r.fail {
		done.Settle(errRefused)
		return
	}
	done.Settle(nil)
}

func (r *outgoingRecorder) PublishOutgoing(_ context.Context, _ string, m *transport.Outgoing) error {
	r.record(m)
	return nil
}

func (r *outgoingRecorder) record(m *transport.Outgoing) {
	if !r.keep {
		return
	}
	r.last = transport.Outgoing{ID: slices.Clone(m.ID), Key: slices.Clone(m.Key), Payload: slices.Clone(m.Payload)}
	for _, h := range m.Headers {
		r.last.Headers = append(r.last.Headers, transport.Header{Key: h.Key, Value: slices.Clone(h.Value)})
	}
}

func newOutgoingRecorder(t *testing.T) (*outgoingRecorder, *pubsub.Client) {
	t.Helper()
	mem, err := memory.New(memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	tr := &outgoingRecorder{Transport: mem}
	c, err := pubsub.New(tr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return tr, c
}

// TestPublishOutgoingAllocations: on the lean path, PublishAsync and Publish of a
// []byte with the raw codec allocate nothing per message of their own once warm (the
// send state is reused, the payload is not boxed, the id and time are formatted into
// the send); only the transport's work remains.
func TestPublishOutgoingAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector drops sync.Pool entries at random")
	}
	_, c := newOutgoingRecorder(t)
	ctx := context.Background()
	topic := pubsub.NewTopic[[]byte]("allocs", pubsub.WithCodec(codec.Raw))
	body := []byte("payload")
	var failed error
	done := func(err error) {
		if err != nil {
			failed = err
		}
	}
	async := testing.AllocsPerRun(1000, func() { pubsub.PublishAsync(ctx, c, topic, body, done) })
	batch := make([][]byte, 100)
	for i := range batch {
		batch[i] = body
	}
	batched := testing.AllocsPerRun(100, func() {
		if err := pubsub.PublishBatch(ctx, c, topic, batch); err != nil {
			failed = err
		}
	})
	sync := testing.AllocsPerRun(1000, func() {
		if err := pubsub.Publish(ctx, c, topic, body); err != nil {
			failed = err
		}
	})
	if failed != nil {
		t.Fatal(failed)
	}
	t.Logf("PublishAsync %.2f, Publish %.2f allocations per message; PublishBatch of 100 %.2f per batch", async, sync, batched)
	// A GC during the run empties the pool once: allow a fraction of an allocation.
	if async > 0.1 || sync > 0.1 {
		t.Errorf("PublishAsync %.2f, Publish %.2f allocations per message, want 0", async, sync)
	}
	// The batch's state and its error slice: nothing per value.
	if batched > 2.5 {
		t.Errorf("PublishBatch of 100: %.2f allocations, want 2", batched)
	}
}

// TestPublishOutgoingHeaders: the transport.Outgoing a lean publish hands over, byte
// for byte: the id, the key, the payload and pubsubkit's headers in order, then the
// WithMetadata entries; the correlation id is the message's own for a new
// conversation.
func TestPublishOutgoingHeaders(t *testing.T) {
	tr, c := newOutgoingRecorder(t)
	tr.keep = true
	ctx := context.Background()
	topic := pubsub.NewTopic[map[string]int]("headers")
	if err := pubsub.Publish(ctx, c, topic, map[string]int{"a": 1}, pubsub.WithMessageKey("k")); err != nil {
		t.Fatal(err)
	}
	m := tr.last
	if !uuidV4.Match(m.ID) || string(m.Key) != "k" || string(m.Payload) != `{"a":1}` {
		t.Fatalf("id %q, key %q, payload %q", m.ID, m.Key, m.Payload)
	}
	want := []string{metadata.ContentType, "application/json", metadata.MessageType, "map[string]int",
		metadata.PublishedAt, "", metadata.CorrelationID, string(m.ID)}
	if len(m.Headers) != 4 {
		t.Fatalf("%d headers, want 4", len(m.Headers))
	}
	for i, h := range m.Headers {
		if h.Key != want[2*i] || want[2*i+1] != "" && string(h.Value) != want[2*i+1] {
			t.Errorf("header %d: %s=%q, want %s=%q", i, h.Key, h.Value, want[2*i], want[2*i+1])
		}
	}
	if at, ok := metadata.ParseTime(string(m.Headers[2].Value)); !ok || metadata.FormatTime(at) != string(m.Headers[2].Value) {
		t.Errorf("published_at %q is not as metadata.FormatTime writes it", m.Headers[2].Value)
	}

	// A long correlation id, key and metadata values: more than the send holds itself.
	long := string(make([]byte, 100))
	done := make(chan error, 1)
	pubsub.PublishAsync(ctx, c, topic, map[string]int{"b": 2}, func(err error) { done <- err },
		pubsub.WithCorrelationID("c-"+long), pubsub.WithMessageKey("k-"+long), pubsub.WithMetadata("x", "x-"+long))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	m = tr.last
	if string(m.Key) != "k-"+long || len(m.Headers) != 5 || string(m.Headers[3].Value) != "c-"+long ||
		m.Headers[4].Key != "x" || string(m.Headers[4].Value) != "x-"+long {
		t.Errorf("key %q, headers %q", m.Key, m.Headers)
	}
}

// TestPublishBatchOutgoingErrors: a PublishBatch on the lean path names the values the
// transport refused, by index, and nothing else.
func TestPublishBatchOutgoingErrors(t *testing.T) {
	tr, c := newOutgoingRecorder(t)
	tr.fail = "b"
	topic := pubsub.NewTopic[[]byte]("batch-errors", pubsub.WithCodec(codec.Raw))
	err := pubsub.PublishBatch(context.Background(), c, topic, [][]byte{[]byte("a"), []byte("b"), []byte("c"), []byte("b")})
	var be *pubsub.BatchError
	if !errors.As(err, &be) || !slices.Equal(be.Failed(), []int{1, 3}) || !errors.Is(err, errRefused) {
		t.Fatalf("PublishBatch: %v, want a BatchError naming 1 and 3", err)
	}
}

// TestPublishOutgoingCorrelationHeaderOnce: a handler's publish carries the handled
// message's correlation header once, with the correlation id, even when WithMetadata
// gives that header an empty value, on the lean path as on the Watermill path; and an
// empty key is no key on both.
func TestPublishOutgoingCorrelationHeaderOnce(t *testing.T) {
	tr, c := newOutgoingRecorder(t)
	tr.keep = true
	ctx := middleware.ContextWithCorrelation(context.Background(), "conv-9", "x-correlation-id")
	topic := pubsub.NewTopic[string]("corr-once")
	if err := pubsub.Publish(ctx, c, topic, "v", pubsub.WithMetadata("x-correlation-id", ""), pubsub.WithMessageKey("")); err != nil {
		t.Fatal(err)
	}
	var values []string
	for _, h := range tr.last.Headers {
		if h.Key == "x-correlation-id" {
			values = append(values, string(h.Value))
		}
	}
	if !slices.Equal(values, []string{"conv-9"}) || len(tr.last.Key) != 0 {
		t.Errorf("lean path: x-correlation-id %q, key %q; want it once as conv-9, and no key", values, tr.last.Key)
	}

	// The Watermill path (a hook reads the message) makes the same metadata.
	var published *message.Message
	mem, err := memory.New(memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	hooked, err := pubsub.New(mem, pubsub.WithEventHook(func(e pubsub.Event) {
		if e.Kind == pubsub.EventPublished {
			published = e.Message
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer hooked.Close()
	if err := pubsub.Publish(ctx, hooked, topic, "v", pubsub.WithMetadata("x-correlation-id", ""), pubsub.WithMessageKey("")); err != nil {
		t.Fatal(err)
	}
	if published == nil {
		t.Fatal("no published event with its message")
	}
	if v := published.Metadata["x-correlation-id"]; v != "conv-9" {
		t.Errorf("Watermill path: x-correlation-id %q, want conv-9", v)
	}
	if _, keyed := published.Metadata[metadata.Key]; keyed {
		t.Errorf("Watermill path: an empty key is in the metadata: %v", published.Metadata)
	}
}
