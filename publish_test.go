package pubsub_test

import (
	"context"
	"errors"
	"fmt"
	neturl "net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/pubsubtest"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/gochannel"
	"github.com/pubsubkit/pubsub/transport/kafka"
	"github.com/pubsubkit/pubsub/transport/memory"
)

type keyed struct {
	Key string    `json:"key"`
	Seq int       `json:"seq"`
	Bad unencoded `json:"bad,omitempty"` // true: the value cannot be encoded
}

// unencoded is a field that fails JSON encoding when true.
type unencoded bool

func (u unencoded) MarshalJSON() ([]byte, error) {
	if u {
		return nil, errors.New("this value cannot be encoded")
	}
	return []byte("false"), nil
}

var keyedTopic = func(name string) pubsub.Topic[keyed] {
	return pubsub.NewTopic[keyed](name, pubsub.WithKey(func(k keyed) string { return k.Key }))
}

// onEveryTransport runs test on memory, on the in-process Kafka cluster and on
// gochannel (a transport without a queue of its own, so the client's queue serves
// PublishAsync).
func onEveryTransport(t *testing.T, test func(t *testing.T, newTransport func(t *testing.T) transport.Transport)) {
	t.Run("memory", func(t *testing.T) {
		test(t, func(t *testing.T) transport.Transport {
			tr, err := memory.New(memory.Config{})
			if err != nil {
				t.Fatal(err)
			}
			return tr
		})
	})
	t.Run("kafka", func(t *testing.T) {
		cluster := kafkatest.New(t)
		test(t, func(t *testing.T) transport.Transport {
			tr, err := kafka.New(context.Background(), kafka.Config{Brokers: cluster.Addrs})
			if err != nil {
				t.Fatal(err)
			}
			return tr
		})
	})
	t.Run("gochannel", func(t *testing.T) {
		test(t, func(t *testing.T) transport.Transport {
			tr, err := gochannel.Open(context.Background(), mustURL(t, "gochannel://?persistent=true"), transport.OpenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return tr
		})
	})
}

// honouredDelivery is the client's default delivery on tr: Ordered (the default) where
// tr keeps order, else Unordered, which Subscribe refuses on such a transport.
func honouredDelivery(tr transport.Transport) pubsub.Option {
	if tr.Capabilities().Ordered {
		return nil
	}
	return pubsub.WithDefaultDelivery(pubsub.Delivery{Ordering: pubsub.Unordered})
}

// callbacks counts the done calls of PublishAsync: each message's must come exactly
// once.
type callbacks struct {
	mu    sync.Mutex
	calls map[int]int
	errs  map[int]error
	all   sync.WaitGroup
}

func newCallbacks(n int) *callbacks {
	c := &callbacks{calls: map[int]int{}, errs: map[int]error{}}
	c.all.Add(n)
	return c
}

func (c *callbacks) done(i int) func(error) {
	return func(err error) {
		c.mu.Lock()
		c.calls[i]++
		first := c.calls[i] == 1
		if err != nil {
			c.errs[i] = err
		}
		c.mu.Unlock()
		if first {
			c.all.Done()
		}
	}
}

func (c *callbacks) check(t *testing.T, n int) {
	t.Helper()
	waited := make(chan struct{})
	go func() { c.all.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(30 * time.Second):
		t.Fatal("not every done callback was called within 30s")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range n {
		if c.calls[i] != 1 {
			t.Fatalf("done of message %d called %d times, want exactly once", i, c.calls[i])
		}
	}
}

// TestPublishAsync: every message's done is called exactly once, every stored
// message is consumed, messages of one key from one goroutine are stored (and on an
// ordered transport consumed) in order; a value that cannot be encoded and one over
// the payload limit fail alone and at once; the correlation id of a handler's
// conversation is kept; Flush returns once everything queued is settled.
func TestPublishAsync(t *testing.T) {
	onEveryTransport(t, func(t *testing.T, newTransport func(t *testing.T) transport.Transport) {
		tr := newTransport(t)
		ordered := tr.Capabilities().Ordered
		h := pubsubtest.NewOn(t, tr, pubsub.WithMaxPayload(200), honouredDelivery(tr))
		h.Timeout = 30 * time.Second
		topic := keyedTopic(kafkatest.Topic("async"))
		var mu sync.Mutex
		seqs := map[string][]int{}
		must(t, pubsub.Subscribe(h.Client, topic, "g", func(_ context.Context, m *pubsub.Message[keyed]) error {
			mu.Lock()
			seqs[m.Payload.Key] = append(seqs[m.Payload.Key], m.Payload.Seq)
			mu.Unlock()
			return nil
		}))
		<-h.Client.Running()
		const n = 1000
		cb := newCallbacks(n + 2)
		ctx := context.Background()
		for i := range n {
			pubsub.PublishAsync(ctx, h.Client, topic, keyed{Key: fmt.Sprint("k", i%7), Seq: i / 7}, cb.done(i))
		}
		// These two fail alone, before PublishAsync returns.
		pubsub.PublishAsync(ctx, h.Client, topic, keyed{Key: "bad", Bad: true}, cb.done(n))
		pubsub.PublishAsync(ctx, h.Client, topic, keyed{Key: strings.Repeat("x", 300)}, cb.done(n+1))
		cb.mu.Lock()
		early := len(cb.errs)
		cb.mu.Unlock()
		if early != 2 {
			t.Errorf("%d failures reported when PublishAsync returned, want the 2 that cannot be published", early)
		}
		must(t, h.Client.Flush(ctx))
		cb.check(t, n+2)
		for i, err := range cb.errs {
			if i < n {
				t.Fatalf("message %d: %v", i, err)
			}
		}
		if !strings.Contains(cb.errs[n].Error(), "cannot encode") || !errors.Is(cb.errs[n+1], pubsub.ErrPayloadTooLarge) {
			t.Errorf("failures %v, %v: want an encoding error and ErrPayloadTooLarge", cb.errs[n], cb.errs[n+1])
		}
		h.WaitHandled(topic.Name(), "g", n)
		mu.Lock()
		defer mu.Unlock()
		for key, got := range seqs {
			if len(got) != n/7 && len(got) != n/7+1 {
				t.Errorf("key %s: %d messages consumed", key, len(got))
			}
			for i := 1; ordered && i < len(got); i++ {
				if got[i] != got[i-1]+1 {
					t.Fatalf("key %s consumed in the order %v", key, got)
				}
			}
		}
	})
}

// TestPublishBatch: a batch returns once each message is stored or failed; the error
// is a *BatchError naming exactly the failed indexes, and every other value is
// stored.
func TestPublishBatch(t *testing.T) {
	onEveryTransport(t, func(t *testing.T, newTransport func(t *testing.T) transport.Transport) {
		tr := newTransport(t)
		h := pubsubtest.NewOn(t, tr, honouredDelivery(tr))
		h.Timeout = 30 * time.Second
		topic := keyedTopic(kafkatest.Topic("batch"))
		got := make(chan int, 100)
		must(t, pubsub.Subscribe(h.Client, topic, "g", func(_ context.Context, m *pubsub.Message[keyed]) error {
			got <- m.Payload.Seq
			return nil
		}))
		<-h.Client.Running()
		vs := make([]keyed, 50)
		for i := range vs {
			vs[i] = keyed{Key: "k", Seq: i}
		}
		vs[7].Bad, vs[31].Bad = true, true
		err := pubsub.PublishBatch(context.Background(), h.Client, topic, vs)
		var be *pubsub.BatchError
		if !errors.As(err, &be) || fmt.Sprint(be.Failed()) != "[7 31]" || be.Total != 50 {
			t.Fatalf("PublishBatch: %v; want a *BatchError naming indexes 7 and 31 of 50", err)
		}
		seen := map[int]bool{}
		for len(seen) < 48 {
			select {
			case s := <-got:
				seen[s] = true
			case <-time.After(h.Timeout):
				t.Fatalf("consumed %d of the 48 stored messages", len(seen))
			}
		}
		if seen[7] || seen[31] {
			t.Error("a value the batch reported as failed was consumed")
		}
		if err := pubsub.PublishBatch(context.Background(), h.Client, topic, vs[:5]); err != nil {
			t.Fatalf("a batch of good values: %v", err)
		}
	})
}

// TestPublishAsyncKeepsTheConversation: a handler that publishes with PublishAsync
// continues its message's correlation id.
func TestPublishAsyncKeepsTheConversation(t *testing.T) {
	h := pubsubtest.New(t)
	orders, invoices := pubsub.NewTopic[string]("conv.orders"), pubsub.NewTopic[string]("conv.invoices")
	must(t, pubsub.Subscribe(h.Client, orders, "billing", func(ctx context.Context, m *pubsub.Message[string]) error {
		done := make(chan error, 1)
		pubsub.PublishAsync(ctx, h.Client, invoices, "invoice "+m.Payload, func(err error) { done <- err })
		return <-done
	}))
	cids := make(chan string, 1)
	must(t, pubsub.Subscribe(h.Client, invoices, "mailer", func(_ context.Context, m *pubsub.Message[string]) error {
		cids <- m.CorrelationID
		return nil
	}))
	must(t, pubsub.Publish(context.Background(), h.Client, orders, "o-1", pubsub.WithCorrelationID("checkout-9")))
	select {
	case cid := <-cids:
		if cid != "checkout-9" {
			t.Fatalf("the invoice has correlation id %q, want checkout-9", cid)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no invoice")
	}
}

// TestPublishAsyncClosed: after Close every PublishAsync fails at once with ErrClosed.
func TestPublishAsyncClosed(t *testing.T) {
	c, err := pubsub.Open(context.Background(), "memory://")
	if err != nil {
		t.Fatal(err)
	}
	must(t, c.Close())
	var got error
	pubsub.PublishAsync(context.Background(), c, pubsub.NewTopic[string]("closed"), "x", func(err error) { got = err })
	if !errors.Is(got, pubsub.ErrClosed) {
		t.Fatalf("PublishAsync after Close: %v, want ErrClosed at once", got)
	}
	if err := pubsub.PublishBatch(context.Background(), c, pubsub.NewTopic[string]("closed"), []string{"a", "b"}); !errors.Is(err, pubsub.ErrClosed) {
		t.Fatalf("PublishBatch after Close: %v, want ErrClosed", err)
	}
}

// TestCloseReportsWhatWasNotStored: messages queued while the brokers answer no
// produce request: Close waits for them for the drain timeout, then fails them;
// every done is called with an error and Close says how many were not stored.
func TestCloseReportsWhatWasNotStored(t *testing.T) {
	cluster := kafkatest.New(t)
	fake := cluster.RequireFake(t)
	tr, err := kafka.New(context.Background(), kafka.Config{Brokers: cluster.Addrs})
	if err != nil {
		t.Fatal(err)
	}
	c, err := pubsub.New(tr, pubsub.WithDrainTimeout(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	topic := pubsub.NewTopic[string](kafkatest.Topic("unstored"))
	must(t, tr.Provision(context.Background(), topic.Name()))
	var held atomic.Bool
	held.Store(true)
	fake.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		fake.KeepControl()
		if held.Load() {
			fake.SleepControl(func() {
				for held.Load() {
					time.Sleep(10 * time.Millisecond)
				}
			})
		}
		return nil, nil, false
	})
	defer held.Store(false)
	const n = 100
	cb := newCallbacks(n)
	for i := range n {
		pubsub.PublishAsync(context.Background(), c, topic, fmt.Sprint(i), cb.done(i))
	}
	start := time.Now()
	err = c.Close()
	if !errors.Is(err, pubsub.ErrNotFlushed) {
		t.Fatalf("Close with %d messages the brokers never stored: %v, want ErrNotFlushed", n, err)
	}
	if d := time.Since(start); d < 400*time.Millisecond || d > 20*time.Second {
		t.Errorf("Close took %v with a 500ms drain timeout", d)
	}
	held.Store(false)
	cb.check(t, n)
	cb.mu.Lock()
	defer cb.mu.Unlock()
	if len(cb.errs) != n {
		t.Errorf("%d of %d done callbacks got an error", len(cb.errs), n)
	}
}

// TestPublishAsyncBackpressure: with a producer queue of 10 records and brokers that
// answer nothing, PublishAsync waits for room; a context that ends while it waits
// fails that message with the context's error.
func TestPublishAsyncBackpressure(t *testing.T) {
	cluster := kafkatest.New(t)
	fake := cluster.RequireFake(t)
	tr, err := kafka.New(context.Background(), kafka.Config{Brokers: cluster.Addrs, PublishQueue: 10})
	if err != nil {
		t.Fatal(err)
	}
	h := pubsubtest.NewOn(t, tr)
	topic := pubsub.NewTopic[string](kafkatest.Topic("backpressure"))
	must(t, tr.Provision(context.Background(), topic.Name()))
	var held atomic.Bool
	held.Store(true)
	fake.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		fake.KeepControl()
		if held.Load() {
			fake.SleepControl(func() {
				for held.Load() {
					time.Sleep(10 * time.Millisecond)
				}
			})
		}
		return nil, nil, false
	})
	cb := newCallbacks(11)
	for i := range 10 {
		pubsub.PublishAsync(context.Background(), h.Client, topic, fmt.Sprint(i), cb.done(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	over := make(chan error, 1)
	pubsub.PublishAsync(ctx, h.Client, topic, "over", func(err error) {
		cb.done(10)(err)
		over <- err
	})
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("PublishAsync into a full queue returned after %v; it must wait for room", d)
	}
	select {
	case err := <-over:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("the message that found no room: %v, want the context's error", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("the message that found no room was not failed")
	}
	held.Store(false)
	cb.check(t, 11)
	cb.mu.Lock()
	defer cb.mu.Unlock()
	for i := range 10 {
		if cb.errs[i] != nil {
			t.Errorf("message %d, queued before the queue filled: %v", i, cb.errs[i])
		}
	}
}

func mustURL(t *testing.T, raw string) *neturl.URL {
	t.Helper()
	u, err := neturl.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestEncodeThenPublishMessage: a message encoded in one place and published later
// (an outbox) keeps its id, correlation id and payload, and its send span is a child
// of the span that encoded it.
func TestEncodeThenPublishMessage(t *testing.T) {
	o := newObserved(t, pubsub.TraceLogOptions{})
	c := o.h.Client
	topic := pubsub.NewTopic[string]("outboxed")
	got := make(chan *pubsub.Message[string], 1)
	must(t, pubsub.Subscribe(c, topic, "g", func(_ context.Context, m *pubsub.Message[string]) error {
		got <- m
		return nil
	}))
	tracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(o.spans)).Tracer("test")
	ctx, write := tracer.Start(context.Background(), "write order")
	msg, err := pubsub.Encode(ctx, c, topic, "o-1", pubsub.WithCorrelationID("checkout-3"))
	if err != nil {
		t.Fatal(err)
	}
	write.End()
	stored := msg.Copy() // as if read back from a table
	if err := c.PublishMessage(context.Background(), topic.Name(), stored); err != nil {
		t.Fatal(err)
	}
	m := <-got
	if m.ID != msg.UUID || m.CorrelationID != "checkout-3" || m.Payload != "o-1" {
		t.Fatalf("consumed %+v, want the encoded message", m)
	}
	var send sdktrace.ReadOnlySpan
	for deadline := time.Now().Add(5 * time.Second); send == nil && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		for _, s := range o.spans.Ended() {
			if s.Name() == "send outboxed" {
				send = s
			}
		}
	}
	if send == nil || send.Parent().SpanID() != write.SpanContext().SpanID() {
		t.Fatalf("the send span %v is not a child of the span that encoded the message", send)
	}
	if err := c.PublishMessage(context.Background(), "bad topic", stored); !errors.Is(err, pubsub.ErrInvalidOption) {
		t.Fatalf("PublishMessage to a bad topic name: %v", err)
	}
}
