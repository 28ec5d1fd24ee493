package pubsubtest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/pubsubtest"
)

type Order struct {
	ID    string
	Total int
}

type Invoice struct {
	OrderID string
	Amount  int
}

var (
	orders   = pubsub.NewTopic[Order]("orders")
	invoices = pubsub.NewTopic[Invoice]("invoices")
)

// billing is the handler under test: it invoices each order, and refuses orders with
// no total for good.
func billing(c *pubsub.Client) pubsub.Handler[Order] {
	return func(ctx context.Context, m *pubsub.Message[Order]) error {
		if m.Payload.Total <= 0 {
			return pubsub.Permanent(errors.New("order has no total"))
		}
		return pubsub.Publish(ctx, c, invoices, Invoice{OrderID: m.Payload.ID, Amount: m.Payload.Total})
	}
}

func TestBilling(t *testing.T) {
	h := pubsubtest.New(t)
	if err := pubsub.Subscribe(h.Client, orders, "billing", billing(h.Client)); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := pubsub.Publish(ctx, h.Client, orders, Order{ID: "o-1", Total: 30}, pubsub.WithCorrelationID("c-1")); err != nil {
		t.Fatal(err)
	}
	if err := pubsub.Publish(ctx, h.Client, orders, Order{ID: "o-2"}); err != nil {
		t.Fatal(err)
	}

	h.WaitHandled(orders.Name(), "billing", 1)
	got := pubsubtest.WaitPublished(h, invoices, 1)
	if got[0].Payload != (Invoice{OrderID: "o-1", Amount: 30}) || got[0].CorrelationID != "c-1" {
		t.Fatalf("invoice %+v with cid %q; want o-1 for 30 with cid c-1", got[0].Payload, got[0].CorrelationID)
	}
	dead := h.WaitDeadLettered(orders.Name(), "billing", 1)
	if dead[0].Err == nil || !pubsub.IsPermanent(dead[0].Err) {
		t.Fatalf("order o-2 dead-lettered with %v, want the permanent error", dead[0].Err)
	}
}

// A handler's effects are read back as typed messages.
func Example() {
	t := newExampleT() // in a test: the test's *testing.T
	defer t.cleanup()
	h := pubsubtest.New(t)
	_ = pubsub.Subscribe(h.Client, orders, "billing", billing(h.Client))
	_ = pubsub.Publish(context.Background(), h.Client, orders, Order{ID: "o-7", Total: 12})

	h.WaitHandled(orders.Name(), "billing", 1)
	for _, inv := range pubsubtest.WaitPublished(h, invoices, 1) {
		fmt.Printf("invoice for %s: %d\n", inv.Payload.OrderID, inv.Payload.Amount)
	}
	// Output:
	// invoice for o-7: 12
}

// exampleT stands in for the *testing.T an example does not have: it runs cleanups when
// told and turns a failure into a panic.
type exampleT struct {
	testing.TB
	cleanups []func()
}

func newExampleT() *exampleT { return &exampleT{} }

func (e *exampleT) Helper()                           {}
func (e *exampleT) Cleanup(f func())                  { e.cleanups = append(e.cleanups, f) }
func (e *exampleT) Errorf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (e *exampleT) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

func (e *exampleT) cleanup() {
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
}
