package testsuite

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/transport"
)

// uniqueName returns a topic or group name no other test uses.
func uniqueName(t *testing.T, prefix string) string {
	base := strings.NewReplacer("/", ".", " ", "_").Replace(t.Name())
	if len(base) > 60 {
		base = base[len(base)-60:]
	}
	return prefix + "." + strings.Trim(base, ".") + "." + uuid.NewString()[:8]
}

// newTransport returns h's transport, closed when the test ends.
func newTransport(t *testing.T, h Harness) transport.Transport {
	t.Helper()
	tr := h.New(t)
	t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			t.Errorf("closing transport: %v", err)
		}
	})
	return tr
}

// newClient returns a client on a fresh transport, closed when the test ends.
func newClient(t *testing.T, h Harness, opts ...pubsub.Option) *pubsub.Client {
	t.Helper()
	c, _ := newClientOn(t, h, opts...)
	return c
}

// newClientOn is newClient that also returns the client's transport, for rules that
// look beneath the client. The client owns and closes it.
func newClientOn(t *testing.T, h Harness, opts ...pubsub.Option) (*pubsub.Client, transport.Transport) {
	t.Helper()
	tr := h.New(t)
	c, err := pubsub.New(tr, clientOptions(tr, opts...)...)
	if err != nil {
		t.Fatalf("pubsub.New: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c, tr
}

// clientOptions returns opts after a default delivery the transport can honour: a
// transport without Capabilities.Ordered refuses Ordered delivery (the client's
// default), so its clients default to Unordered; a rule's own options come after and
// win.
func clientOptions(tr transport.Transport, opts ...pubsub.Option) []pubsub.Option {
	if tr.Capabilities().Ordered {
		return opts
	}
	return append([]pubsub.Option{pubsub.WithDefaultDelivery(pubsub.Delivery{Ordering: pubsub.Unordered})}, opts...)
}

// receive reads n messages from ch, acking each, or fails the test after timeout.
func receive(t *testing.T, ch <-chan *message.Message, n int, timeout time.Duration) []*message.Message {
	t.Helper()
	var got []*message.Message
	deadline := time.Now().Add(timeout)
	for len(got) < n {
		msg := next(t, ch, time.Until(deadline))
		msg.Ack()
		got = append(got, msg)
	}
	return got
}

// next reads one message from ch without acking it, or fails the test after timeout.
func next(t *testing.T, ch <-chan *message.Message, timeout time.Duration) *message.Message {
	t.Helper()
	select {
	case msg, ok := <-ch:
		if !ok {
			t.Fatal("subscription closed while a message was expected")
		}
		return msg
	case <-time.After(timeout):
		t.Fatalf("no message within %s", timeout)
	}
	return nil
}

// subscribe subscribes to topic in group, ended when the test ends.
func subscribe(t *testing.T, tr transport.Transport, topic, group string) <-chan *message.Message {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return subscribeWith(t, tr, ctx, topic, transport.SubscribeOptions{Group: group})
}

// subscribeWith subscribes to topic with opts until ctx ends.
func subscribeWith(t *testing.T, tr transport.Transport, ctx context.Context, topic string, opts transport.SubscribeOptions) <-chan *message.Message {
	t.Helper()
	sub, err := tr.Subscribe(ctx, topic, opts)
	if err != nil {
		t.Fatalf("Subscribe(%q, %+v): %v", topic, opts, err)
	}
	return sub.Messages()
}

func publishRaw(t *testing.T, tr transport.Transport, topic string, msgs ...*message.Message) {
	t.Helper()
	if err := tr.Publish(topic, msgs...); err != nil {
		t.Fatalf("Publish(%q): %v", topic, err)
	}
}

// recorder collects what a handler saw, safe for concurrent use.
type recorder[T any] struct {
	mu   sync.Mutex
	msgs []*pubsub.Message[T]
	more chan struct{}
}

func newRecorder[T any]() *recorder[T] { return &recorder[T]{more: make(chan struct{}, 1)} }

func (r *recorder[T]) handle(_ context.Context, m *pubsub.Message[T]) error {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
	select {
	case r.more <- struct{}{}:
	default:
	}
	return nil
}

// wait returns once the handler saw n messages, or fails the test.
func (r *recorder[T]) wait(t *testing.T, n int, timeout time.Duration) []*pubsub.Message[T] {
	t.Helper()
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		got := append([]*pubsub.Message[T](nil), r.msgs...)
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-r.more:
		case <-deadline:
			t.Fatalf("handler saw %d of %d messages within %s", len(got), n, timeout)
		}
	}
}

func (r *recorder[T]) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

// KeepOpen returns tr with a Close that leaves it open, for the clients, publishers
// and suites that share one transport; the test closes tr itself.
func KeepOpen(tr transport.Transport) transport.Transport { return keepOpen{tr} }

type keepOpen struct{ transport.Transport }

func (keepOpen) Close() error { return nil }

// SyncBuffer is a bytes.Buffer that concurrent writers (a logger, a child process's
// output) share with the test reading it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
