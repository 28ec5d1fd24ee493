package testsuite

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"go.uber.org/goleak"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/codec"
	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/pubsubtest"
	"github.com/pubsubkit/pubsub/transport"
)

type order struct {
	ID     string `json:"id"`
	Amount int    `json:"amount"`
	Key    string `json:"key"`
}

func testCloseIdempotentNoLeak(t *testing.T, h Harness) {
	defer goleak.VerifyNone(t, append([]goleak.Option{goleak.IgnoreCurrent()}, h.IgnoreGoroutines...)...)
	tr := h.New(t)
	c, err := pubsub.New(tr, clientOptions(tr)...)
	if err != nil {
		t.Fatal(err)
	}
	topic := pubsub.NewTopic[order](uniqueName(t, "orders"))
	rec := newRecorder[order]()
	if err := pubsub.Subscribe(c, topic, "g1", rec.handle); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	<-c.Running() // a transport that keeps nothing (gochannel) gets the message once subscribed
	if err := pubsub.Publish(ctx, c, topic, order{ID: "1"}); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, 1, h.Timeout)
	if err := c.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run after Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func testRoundTripMetadata(t *testing.T, h Harness) {
	tr := newTransport(t, h)
	topic := uniqueName(t, "rt")
	ch := subscribe(t, tr, topic, "g1")
	msg := message.NewMessage(uuid.NewString(), []byte(`{"x":1}`))
	msg.Metadata.Set("tenant", "acme")
	msg.Metadata.Set("unicode", "zürich ✓")
	publishRaw(t, tr, topic, msg)
	got := receive(t, ch, 1, h.Timeout)[0]
	if got.UUID != msg.UUID || !bytes.Equal(got.Payload, msg.Payload) {
		t.Fatalf("got message %s %q, want %s %q", got.UUID, got.Payload, msg.UUID, msg.Payload)
	}
	for k, v := range msg.Metadata {
		if gv, ok := got.Metadata[k]; !ok || gv != v {
			t.Errorf("metadata %q: got %q (present %v), want %q", k, gv, ok, v)
		}
	}
}

func testTypedDecode(t *testing.T, h Harness) {
	c := newClient(t, h)
	topic := pubsub.NewTopic[order](uniqueName(t, "orders"), pubsub.WithKey(func(o order) string { return o.Key }))
	rec := newRecorder[order]()
	if err := pubsub.Subscribe(c, topic, "billing", rec.handle); err != nil {
		t.Fatal(err)
	}
	pubsubtest.Run(t, c)
	before := time.Now().Add(-time.Second)
	want := order{ID: "o-1", Amount: 42, Key: "customer-7"}
	if err := pubsub.Publish(context.Background(), c, topic, want,
		pubsub.WithMetadata("tenant", "acme"), pubsub.WithCorrelationID("cid-1")); err != nil {
		t.Fatal(err)
	}
	m := rec.wait(t, 1, h.Timeout)[0]
	if m.Payload != want {
		t.Errorf("Payload = %+v, want %+v", m.Payload, want)
	}
	if _, err := uuid.Parse(m.ID); err != nil {
		t.Errorf("ID %q is not a UUID: %v", m.ID, err)
	}
	if m.CorrelationID != "cid-1" {
		t.Errorf("CorrelationID = %q, want cid-1", m.CorrelationID)
	}
	if m.Topic != topic.Name() || m.Key != "customer-7" || m.Attempt != 1 {
		t.Errorf("Topic, Key, Attempt = %q, %q, %d; want %q, customer-7, 1", m.Topic, m.Key, m.Attempt, topic.Name())
	}
	if m.Metadata["tenant"] != "acme" || len(m.Metadata) != 1 {
		t.Errorf("Metadata = %v, want only tenant=acme", m.Metadata)
	}
	if m.PublishedAt.Before(before) || m.PublishedAt.After(time.Now()) {
		t.Errorf("PublishedAt = %s, not around the publish", m.PublishedAt)
	}
}

// testUndecodableDeadLettered: payloads that do not decode as the topic's type, or
// were written by another codec, never reach the handler, go to the dead-letter topic
// with the reason, and do not hold back the message behind them.
func testUndecodableDeadLettered(t *testing.T, h Harness) {
	c, tr := newClientOn(t, h)
	name := uniqueName(t, "orders")
	typed := pubsub.NewTopic[order](name)
	rec := newRecorder[order]()
	if err := pubsub.Subscribe(c, typed, "billing", rec.handle); err != nil {
		t.Fatal(err)
	}
	dead := subscribe(t, tr, pubsub.DeadLetterTopicName(name, "billing"), "inspect")
	pubsubtest.Run(t, c)

	ctx := context.Background()
	wrongShape := pubsub.NewTopic[json.RawMessage](name)
	if err := pubsub.Publish(ctx, c, wrongShape, json.RawMessage(`{"amount":"lots"}`)); err != nil {
		t.Fatal(err)
	}
	wrongCodec := pubsub.NewTopic[[]byte](name, pubsub.WithCodec(codec.Raw))
	if err := pubsub.Publish(ctx, c, wrongCodec, []byte("\x00\x01 binary")); err != nil {
		t.Fatal(err)
	}
	if err := pubsub.Publish(ctx, c, typed, order{ID: "fine"}); err != nil {
		t.Fatal(err)
	}

	// Without keys the two may sit on different partitions: match them by payload.
	byPayload := map[string]*message.Message{}
	for _, d := range receive(t, dead, 2, h.Timeout) {
		byPayload[string(d.Payload)] = d
	}
	shape, binary := byPayload[`{"amount":"lots"}`], byPayload["\x00\x01 binary"]
	if shape == nil || binary == nil {
		t.Fatalf("dead letters %v do not hold both payloads byte for byte", slices.Collect(maps.Keys(byPayload)))
	}
	for _, d := range []*message.Message{shape, binary} {
		if d.Metadata.Get(metadata.DeadLetterPermanent) != "true" || d.Metadata.Get(metadata.DeadLetterReason) == "" ||
			d.Metadata.Get(metadata.DeadLetterTopic) != name || d.Metadata.Get(metadata.DeadLetterGroup) != "billing" {
			t.Errorf("dead letter %q metadata lacks the reason, source or group: %v", d.Payload, d.Metadata)
		}
	}
	if reason := binary.Metadata.Get(metadata.DeadLetterReason); !strings.Contains(reason, "content type") {
		t.Errorf("reason for the wrong codec = %q, want it to name the content type", reason)
	}
	got := rec.wait(t, 1, h.Timeout)
	if len(got) != 1 || got[0].Payload.ID != "fine" {
		t.Fatalf("handler saw %v; want only the good order", got)
	}
}

func testOrderPerKey(t *testing.T, h Harness) {
	c := newClient(t, h)
	topic := pubsub.NewTopic[order](uniqueName(t, "orders"), pubsub.WithKey(func(o order) string { return o.Key }))
	rec := newRecorder[order]()
	if err := pubsub.Subscribe(c, topic, "g1", rec.handle); err != nil {
		t.Fatal(err)
	}
	const keys, perKey = 4, 50
	for i := range keys * perKey {
		o := order{Key: fmt.Sprintf("k%d", i%keys), Amount: i / keys}
		if err := pubsub.Publish(context.Background(), c, topic, o); err != nil {
			t.Fatal(err)
		}
	}
	pubsubtest.Run(t, c)
	got := rec.wait(t, keys*perKey, h.Timeout)
	next := map[string]int{}
	for _, m := range got {
		if m.Payload.Amount != next[m.Key] {
			t.Fatalf("key %s: got sequence number %d, want %d", m.Key, m.Payload.Amount, next[m.Key])
		}
		next[m.Key]++
	}
}

func testGroupsFanOut(t *testing.T, h Harness) {
	c := newClient(t, h)
	topic := pubsub.NewTopic[order](uniqueName(t, "orders"))
	billing, shipping := newRecorder[order](), newRecorder[order]()
	if err := pubsub.Subscribe(c, topic, "billing", billing.handle); err != nil {
		t.Fatal(err)
	}
	if err := pubsub.Subscribe(c, topic, "shipping", shipping.handle); err != nil {
		t.Fatal(err)
	}
	pubsubtest.Run(t, c)
	const n = 50
	for i := range n {
		if err := pubsub.Publish(context.Background(), c, topic, order{Amount: i}); err != nil {
			t.Fatal(err)
		}
	}
	for name, r := range map[string]*recorder[order]{"billing": billing, "shipping": shipping} {
		assertOnceEach(t, name, r.wait(t, n, h.Timeout), n)
	}
	time.Sleep(50 * time.Millisecond) // a duplicate would arrive right behind
	if billing.count() != n || shipping.count() != n {
		t.Errorf("after settling: billing saw %d, shipping %d, want %d each", billing.count(), shipping.count(), n)
	}
}

func assertOnceEach(t *testing.T, who string, got []*pubsub.Message[order], n int) {
	t.Helper()
	seen := map[int]int{}
	for _, m := range got {
		seen[m.Payload.Amount]++
	}
	for i := range n {
		if seen[i] != 1 {
			t.Errorf("%s: message %d handled %d times, want once", who, i, seen[i])
		}
	}
}

// testOnceWithinGroup: two members of one group share the messages; none is handled
// twice or lost.
func testOnceWithinGroup(t *testing.T, h Harness) {
	tr := newTransport(t, h)
	topic := uniqueName(t, "shared")
	a := subscribe(t, tr, topic, "workers")
	b := subscribe(t, tr, topic, "workers")
	const n = 100
	for i := range n {
		publishRaw(t, tr, topic, message.NewMessage(fmt.Sprint(i), nil))
	}
	counts := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	total := make(chan struct{}, n*2)
	for _, ch := range []<-chan *message.Message{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for msg := range ch {
				mu.Lock()
				counts[msg.UUID]++
				mu.Unlock()
				msg.Ack()
				total <- struct{}{}
			}
		}()
	}
	deadline := time.After(h.Timeout)
	for range n {
		select {
		case <-total:
		case <-deadline:
			t.Fatalf("group received fewer than %d messages within %s", n, h.Timeout)
		}
	}
	select {
	case <-total:
		t.Error("group received more messages than were published")
	case <-time.After(100 * time.Millisecond):
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range n {
		if counts[fmt.Sprint(i)] != 1 {
			t.Errorf("message %d delivered %d times in the group, want once", i, counts[fmt.Sprint(i)])
		}
	}
}

func testRetainedBeforeSubscribe(t *testing.T, h Harness) {
	c := newClient(t, h)
	topic := pubsub.NewTopic[order](uniqueName(t, "orders"))
	const n = 20
	for i := range n {
		if err := pubsub.Publish(context.Background(), c, topic, order{Amount: i}); err != nil {
			t.Fatal(err)
		}
	}
	rec := newRecorder[order]()
	pubsubtest.Run(t, c)
	if err := pubsub.Subscribe(c, topic, "late", rec.handle); err != nil {
		t.Fatal(err)
	}
	assertOnceEach(t, "late group", rec.wait(t, n, h.Timeout), n)
}

func testRedeliveryAfterError(t *testing.T, h Harness) {
	tr := newTransport(t, h)
	topic := uniqueName(t, "redeliver")
	ch := subscribe(t, tr, topic, "g1")
	// One key, so that a partitioned transport puts both on one partition: order is
	// promised per key.
	first, second := message.NewMessage("first", nil), message.NewMessage("second", nil)
	first.Metadata.Set(metadata.Key, "k")
	second.Metadata.Set(metadata.Key, "k")
	publishRaw(t, tr, topic, first, second)
	first = next(t, ch, h.Timeout)
	if tr.Capabilities().Ordered && first.UUID != "first" {
		t.Fatalf("got %s first from an ordered transport", first.UUID)
	}
	first.Nack()
	again := next(t, ch, h.Timeout)
	if tr.Capabilities().Ordered && again.UUID != first.UUID {
		t.Fatalf("after a nack got %s; an ordered transport redelivers the nacked message first", again.UUID)
	}
	again.Ack()
	seen := map[string]bool{first.UUID: true, again.UUID: true}
	if len(seen) == 1 {
		seen[receive(t, ch, 1, h.Timeout)[0].UUID] = true
	}
	if !seen["first"] || !seen["second"] {
		t.Fatalf("after the nack got %v, want first and second", seen)
	}
}

// testNackNoBusyLoop: a message nacked again and again comes back after a pause each
// time. Watermill's gochannel redelivers about 64,000 times in 200 ms; the bound here
// is generous and only a busy loop breaks it.
func testNackNoBusyLoop(t *testing.T, h Harness) {
	tr := newTransport(t, h)
	topic := uniqueName(t, "nack")
	ch := subscribe(t, tr, topic, "g1")
	publishRaw(t, tr, topic, message.NewMessage("poison", nil))
	// The window opens at the first delivery: joining a group can take a while.
	next(t, ch, h.Timeout).Nack()
	deliveries := 1
	stop := time.After(500 * time.Millisecond)
loop:
	for {
		select {
		case msg := <-ch:
			deliveries++
			msg.Nack()
		case <-stop:
			break loop
		}
	}
	if deliveries == 0 || deliveries > 250 {
		t.Fatalf("%d deliveries of a message nacked for 500ms; want at least 1 and no busy loop (at most 250)", deliveries)
	}
}

func testConcurrentPublishers(t *testing.T, h Harness) {
	c := newClient(t, h)
	topic := pubsub.NewTopic[order](uniqueName(t, "orders"))
	rec := newRecorder[order]()
	if err := pubsub.Subscribe(c, topic, "g1", rec.handle); err != nil {
		t.Fatal(err)
	}
	pubsubtest.Run(t, c)
	const publishers, each = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := pubsub.Publish(context.Background(), c, topic, order{Amount: p*each + i}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	assertOnceEach(t, "group", rec.wait(t, publishers*each, h.Timeout), publishers*each)
}

func testContextCancellation(t *testing.T, h Harness) {
	c := newClient(t, h)
	topic := pubsub.NewTopic[order](uniqueName(t, "orders"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := pubsub.Publish(ctx, c, topic, order{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Publish with a cancelled context: %v, want context.Canceled", err)
	}

	// Ending a subscription's context closes its channel.
	tr := newTransport(t, h)
	subCtx, stop := context.WithCancel(context.Background())
	ch := subscribeWith(t, tr, subCtx, uniqueName(t, "sub"), transport.SubscribeOptions{Group: "g1"})
	stop()
	select {
	case _, open := <-ch:
		if open {
			t.Error("got a message from an empty topic")
		}
	case <-time.After(h.Timeout):
		t.Error("subscription channel still open after its context ended")
	}

	// Ending Run's context drains and returns nil.
	runCtx, stopRun := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	<-c.Running()
	stopRun()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after its context ended: %v", err)
		}
	case <-time.After(h.Timeout):
		t.Error("Run did not return after its context ended")
	}
}

func testLargeMessage(t *testing.T, h Harness) {
	c := newClient(t, h)
	topic := pubsub.NewTopic[[]byte](uniqueName(t, "blobs"), pubsub.WithCodec(codec.Raw))
	rec := newRecorder[[]byte]()
	if err := pubsub.Subscribe(c, topic, "g1", rec.handle); err != nil {
		t.Fatal(err)
	}
	pubsubtest.Run(t, c)
	// 900 KiB: large, yet below Kafka's default limit of about 1 MB per message with
	// room for the headers.
	blob := make([]byte, 900<<10)
	for i := range blob {
		blob[i] = byte(i * 7)
	}
	if err := pubsub.Publish(context.Background(), c, topic, blob); err != nil {
		t.Fatal(err)
	}
	if got := rec.wait(t, 1, h.Timeout)[0].Payload; !bytes.Equal(got, blob) {
		t.Fatalf("%d-byte payload came back as %d bytes, not byte for byte", len(blob), len(got))
	}
}

// testHandlerPublishesToOwnTopic: a handler that publishes to the topic it consumes
// must not deadlock.
func testHandlerPublishesToOwnTopic(t *testing.T, h Harness) {
	c := newClient(t, h)
	topic := pubsub.NewTopic[order](uniqueName(t, "loop"))
	rec := newRecorder[order]()
	const hops = 20
	err := pubsub.Subscribe(c, topic, "g1", func(ctx context.Context, m *pubsub.Message[order]) error {
		if m.Payload.Amount < hops {
			if err := pubsub.Publish(ctx, c, topic, order{Amount: m.Payload.Amount + 1}); err != nil {
				return err
			}
		}
		return rec.handle(ctx, m)
	})
	if err != nil {
		t.Fatal(err)
	}
	pubsubtest.Run(t, c)
	if err := pubsub.Publish(context.Background(), c, topic, order{Amount: 0}); err != nil {
		t.Fatal(err)
	}
	assertOnceEach(t, "self-publishing handler", rec.wait(t, hops+1, h.Timeout), hops+1)
}

// testCorrelationAcrossHandlerPublish: a publish inside a handler carries the incoming
// correlation id without the handler passing it.
func testCorrelationAcrossHandlerPublish(t *testing.T, h Harness) {
	c := newClient(t, h)
	orders := pubsub.NewTopic[order](uniqueName(t, "orders"))
	invoices := pubsub.NewTopic[order](uniqueName(t, "invoices"))
	rec := newRecorder[order]()
	err := pubsub.Subscribe(c, orders, "billing", func(ctx context.Context, m *pubsub.Message[order]) error {
		if pubsub.CorrelationID(ctx) != m.CorrelationID {
			return fmt.Errorf("CorrelationID(ctx) = %q, message has %q", pubsub.CorrelationID(ctx), m.CorrelationID)
		}
		return pubsub.Publish(ctx, c, invoices, m.Payload)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := pubsub.Subscribe(c, invoices, "mailer", rec.handle); err != nil {
		t.Fatal(err)
	}
	pubsubtest.Run(t, c)
	if err := pubsub.Publish(context.Background(), c, orders, order{ID: "a"}, pubsub.WithCorrelationID("conv-1")); err != nil {
		t.Fatal(err)
	}
	if got := rec.wait(t, 1, h.Timeout)[0]; got.CorrelationID != "conv-1" {
		t.Fatalf("invoice correlation id = %q, want conv-1 from the order", got.CorrelationID)
	}
}

func testClosedRefuses(t *testing.T, h Harness) {
	tr := h.New(t)
	c, err := pubsub.New(tr, clientOptions(tr)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	topic := pubsub.NewTopic[order](uniqueName(t, "orders"))
	if err := pubsub.Publish(context.Background(), c, topic, order{}); !errors.Is(err, pubsub.ErrClosed) {
		t.Errorf("Publish after Close: %v, want ErrClosed", err)
	}
	if err := pubsub.Subscribe(c, topic, "g1", newRecorder[order]().handle); !errors.Is(err, pubsub.ErrClosed) {
		t.Errorf("Subscribe after Close: %v, want ErrClosed", err)
	}
	if err := c.Run(context.Background()); !errors.Is(err, pubsub.ErrClosed) {
		t.Errorf("Run after Close: %v, want ErrClosed", err)
	}
}
