// Package pubsubtest helps unit-test handlers without a broker: a running client on
// the memory transport, waits for handled messages, and captures of what was
// published.
//
//	func TestBilling(t *testing.T) {
//		h := pubsubtest.New(t)
//		pubsub.Subscribe(h.Client, orders, "billing", billing.Handle)
//		pubsub.Publish(ctx, h.Client, orders, Order{ID: "1"})
//		h.WaitHandled(orders.Name(), "billing", 1)
//		invoices := pubsubtest.WaitPublished(h, invoiceTopic, 1)
//	}
package pubsubtest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/memory"
)

// DefaultTimeout bounds every wait unless Harness.Timeout is changed.
const DefaultTimeout = 10 * time.Second

// Harness is a running client on a fresh memory transport, for one test. It records
// every event of the client's messages. Its methods are safe for concurrent use.
type Harness struct {
	// Client is running: subscribe and publish at will.
	Client *pubsub.Client
	// Timeout bounds every wait; a wait that runs out fails the test.
	Timeout time.Duration

	t       testing.TB
	mu      sync.Mutex
	events  []pubsub.Event
	changed chan struct{} // closed and replaced on every event
}

// New returns a Harness whose client, on a fresh memory transport, runs until the test
// ends; t.Cleanup closes it and fails the test if closing fails. opts are passed to the
// client.
func New(t testing.TB, opts ...pubsub.Option) *Harness {
	t.Helper()
	tr, err := memory.New(memory.Config{})
	if err != nil {
		t.Fatalf("pubsubtest: %v", err)
	}
	return NewOn(t, tr, opts...)
}

// NewOn is New on a transport of your choice, for example Kafka in an integration
// test. The client owns tr and closes it when the test ends.
func NewOn(t testing.TB, tr transport.Transport, opts ...pubsub.Option) *Harness {
	t.Helper()
	h := &Harness{Timeout: DefaultTimeout, t: t, changed: make(chan struct{})}
	c, err := pubsub.New(tr, append(opts, pubsub.WithEventHook(h.record))...)
	if err != nil {
		t.Fatalf("pubsubtest: %v", err)
	}
	h.Client = c
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("pubsubtest: Close: %v", err)
		}
	})
	Run(t, c)
	return h
}

// Run runs c in the background until the test ends, and returns once c consumes every
// subscription registered so far. When the test ends, Run's context is cancelled and
// the test fails if the drain reports an error. Use it for a client you built
// yourself, for example on Kafka in an integration test.
func Run(t testing.TB, c *pubsub.Client) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("pubsubtest: Run: %v", err)
		}
	})
	select {
	case <-c.Running():
	case err := <-done:
		done <- err
		t.Fatalf("pubsubtest: Run returned before consuming: %v", err)
	case <-time.After(DefaultTimeout):
		t.Fatalf("pubsubtest: client not consuming after %s", DefaultTimeout)
	}
}

func (h *Harness) record(e pubsub.Event) {
	if e.Message != nil {
		e.Message = e.Message.Copy()
	}
	h.mu.Lock()
	h.events = append(h.events, e)
	close(h.changed)
	h.changed = make(chan struct{})
	h.mu.Unlock()
}

// Events returns the events recorded so far that match kind, topic and group; an
// empty topic or group matches any.
func (h *Harness) Events(kind pubsub.EventKind, topic, group string) []pubsub.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []pubsub.Event
	for _, e := range h.events {
		if e.Kind == kind && (topic == "" || e.Topic == topic) && (group == "" || e.Group == group) {
			out = append(out, e)
		}
	}
	return out
}

// WaitEvents waits until at least n events match kind, topic and group (as in Events)
// and returns them, or fails the test after Timeout saying what it saw.
func (h *Harness) WaitEvents(kind pubsub.EventKind, topic, group string, n int) []pubsub.Event {
	h.t.Helper()
	deadline := time.NewTimer(h.Timeout)
	defer deadline.Stop()
	for {
		h.mu.Lock()
		changed := h.changed
		h.mu.Unlock()
		got := h.Events(kind, topic, group)
		if len(got) >= n {
			return got
		}
		select {
		case <-changed:
		case <-deadline.C:
			h.t.Fatalf("pubsubtest: waited %s for %d %q events on topic %q group %q, saw %d%s",
				h.Timeout, n, kind, topic, group, len(got), h.failures(topic, group))
			return nil
		}
	}
}

// WaitHandled waits until the handler of topic in group has processed n messages
// successfully, or fails the test after Timeout. The failure names the handler errors
// seen, if any.
func (h *Harness) WaitHandled(topic, group string, n int) {
	h.t.Helper()
	h.WaitEvents(pubsub.EventProcessed, topic, group, n)
}

// WaitDeadLettered waits until n messages of topic in group were dead-lettered and
// returns their events; Event.Err says why.
func (h *Harness) WaitDeadLettered(topic, group string, n int) []pubsub.Event {
	h.t.Helper()
	return h.WaitEvents(pubsub.EventDeadLettered, topic, group, n)
}

func (h *Harness) failures(topic, group string) string {
	failed := h.Events(pubsub.EventFailed, topic, group)
	if len(failed) == 0 {
		return ""
	}
	return fmt.Sprintf("; %d handler attempts failed, the last with: %v", len(failed), failed[len(failed)-1].Err)
}

// Published returns the messages published to topic so far, decoded as T, in publish
// order.
func Published[T any](h *Harness, topic pubsub.Topic[T]) []*pubsub.Message[T] {
	h.t.Helper()
	return decodeAll(h, topic, h.Events(pubsub.EventPublished, topic.Name(), ""))
}

// WaitPublished waits until n messages were published to topic and returns them
// decoded as T, or fails the test after Timeout.
func WaitPublished[T any](h *Harness, topic pubsub.Topic[T], n int) []*pubsub.Message[T] {
	h.t.Helper()
	return decodeAll(h, topic, h.WaitEvents(pubsub.EventPublished, topic.Name(), "", n))
}

func decodeAll[T any](h *Harness, topic pubsub.Topic[T], events []pubsub.Event) []*pubsub.Message[T] {
	h.t.Helper()
	out := make([]*pubsub.Message[T], 0, len(events))
	for _, e := range events {
		m, err := pubsub.Decode(topic, e.Message)
		if err != nil {
			h.t.Fatalf("pubsubtest: message %s on %q: %v", e.MessageID, topic.Name(), err)
		}
		out = append(out, m)
	}
	return out
}
