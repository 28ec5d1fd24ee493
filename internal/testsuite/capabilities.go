package testsuite

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/transport"
)

// capabilityRules check that what a transport does not guarantee is refused when a
// subscription asks for it, appended to rules.
var capabilityRules = []rule{
	{name: "OrderedRefusedWithoutCapability", parallel: true, needs: notOrdered, run: testOrderedRefused},
	{name: "SecondMemberRefusedWithoutGroups", parallel: true, needs: notGroups, run: testSecondMemberRefused},
}

func init() { rules = append(rules, capabilityRules...) }

func notOrdered(c transport.Capabilities) bool { return !c.Ordered }
func notGroups(c transport.Capabilities) bool  { return !c.ConsumerGroups }

// testOrderedRefused: on a transport without Capabilities.Ordered, Subscribe refuses
// Ordered delivery, the client's default as well as an explicit one, with an error
// naming it, and takes Unordered.
func testOrderedRefused(t *testing.T, h Harness) {
	tr := h.New(t)
	c, err := pubsub.New(tr) // the client's default delivery: Ordered
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	topic := pubsub.NewTopic[order](uniqueName(t, "orders"))
	err = pubsub.Subscribe(c, topic, "g1", newRecorder[order]().handle)
	if !errors.Is(err, pubsub.ErrInvalidOption) || !strings.Contains(err.Error(), "Ordered") {
		t.Fatalf("Subscribe with the default (Ordered) delivery: %v, want ErrInvalidOption naming Ordered", err)
	}
	err = pubsub.Subscribe(c, topic, "g2", newRecorder[order]().handle, pubsub.WithDelivery(pubsub.Delivery{Ordering: pubsub.Ordered, Retry: 2}))
	if !errors.Is(err, pubsub.ErrInvalidOption) {
		t.Fatalf("Subscribe WithDelivery(Ordered): %v, want ErrInvalidOption", err)
	}
	if err := pubsub.Subscribe(c, topic, "g3", newRecorder[order]().handle, pubsub.WithDelivery(pubsub.Delivery{Ordering: pubsub.Unordered})); err != nil {
		t.Fatalf("Subscribe WithDelivery(Unordered): %v", err)
	}
}

// testSecondMemberRefused: on a transport without Capabilities.ConsumerGroups, a
// second member of a (topic, group) is refused while the first runs (it would get every
// message too, instead of sharing them), another group is not, and once the first
// member has ended the group may subscribe again.
func testSecondMemberRefused(t *testing.T, h Harness) {
	tr := newTransport(t, h)
	topic := uniqueName(t, "orders")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first, err := tr.Subscribe(ctx, topic, transport.SubscribeOptions{Group: "g1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Subscribe(context.Background(), topic, transport.SubscribeOptions{Group: "g1"}); !errors.Is(err, transport.ErrInvalidOption) {
		t.Fatalf("a second member of group g1: %v, want ErrInvalidOption", err)
	}
	otherCtx, endOther := context.WithCancel(context.Background())
	defer endOther()
	other, err := tr.Subscribe(otherCtx, topic, transport.SubscribeOptions{Group: "g2"})
	if err != nil {
		t.Fatalf("a member of another group: %v", err)
	}
	cancel()
	waitClosed(t, first, h.Timeout)
	againCtx, endAgain := context.WithCancel(context.Background())
	defer endAgain()
	if _, err := tr.Subscribe(againCtx, topic, transport.SubscribeOptions{Group: "g1"}); err != nil {
		t.Fatalf("group g1 again once its member ended: %v", err)
	}
	endOther()
	waitClosed(t, other, h.Timeout)
}

// waitClosed waits until sub has ended (Done), or fails the test after timeout.
func waitClosed(t *testing.T, sub transport.Subscription, timeout time.Duration) {
	t.Helper()
	select {
	case <-sub.Done():
	case <-time.After(timeout):
		t.Fatalf("the subscription did not end within %s of its context's end", timeout)
	}
}
