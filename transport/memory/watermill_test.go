package memory_test

import (
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	"github.com/pubsubkit/pubsub/internal/testsuite"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/memory"
	"github.com/pubsubkit/pubsub/transport/watermilladapter"
)

// TestWatermillPubSub runs Watermill's own universal Pub/Sub suite on the memory
// transport. The flags say what the transport really does: consumer groups, order with
// one message in flight (the default Concurrency), retention for subscribers that come later; not persistent
// across instances, so the suite shares one instance per test.
func TestWatermillPubSub(t *testing.T) {
	features := tests.Features{
		ConsumerGroups:                   true,
		ExactlyOnceDelivery:              false,
		GuaranteedOrder:                  true,
		Persistent:                       false,
		RequireSingleInstance:            true,
		NewSubscriberReceivesOldMessages: true,
		ContextPreserved:                 false,
	}
	shared := perTest{}
	pubSub := func(t *testing.T) (message.Publisher, message.Subscriber) {
		tr := shared.get(t)
		return testsuite.KeepOpen(tr), watermilladapter.NewSubscriber(tr, transport.SubscribeOptions{})
	}
	groupPubSub := func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		tr := shared.get(t)
		return testsuite.KeepOpen(tr), watermilladapter.NewSubscriber(tr, transport.SubscribeOptions{Group: group})
	}
	tests.TestPubSub(t, features, pubSub, groupPubSub)
}

// perTest hands every constructor call of one test the same transport, closed when the
// test ends: Watermill calls the constructor several times per test and expects the
// calls to see each other's messages (RequireSingleInstance).
type perTest struct {
	mu sync.Mutex
	m  map[*testing.T]*memory.Transport
}

func (p *perTest) get(t *testing.T) *memory.Transport {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[*testing.T]*memory.Transport{}
	}
	if tr, ok := p.m[t]; ok {
		return tr
	}
	// A short nack pause: the suite nacks one message hundreds of times in a row. A
	// short drain: the suite closes subscribers with messages it never acks.
	tr, err := memory.New(memory.Config{NackDelay: 5 * time.Millisecond, Drain: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			t.Error(err)
		}
	})
	p.m[t] = tr
	return tr
}
