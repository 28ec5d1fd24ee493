package engine_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/internal/engine"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/memory"
)

// slowPause is the memory transport whose subscriptions of topic "slow" take a while
// to Pause (as a Kafka subscription does while its lock is busy).
type slowPause struct {
	*memory.Transport
	pausing chan struct{} // closed when the slow Pause began
	release chan struct{} // the slow Pause returns once this is closed
}

type slowSub struct {
	transport.Subscription
	p *slowPause
}

func (s slowSub) Pause() {
	close(s.p.pausing)
	<-s.p.release
	s.Subscription.Pause()
}

func (p *slowPause) SubscribeHandler(ctx context.Context, topic string, opts transport.SubscribeOptions, h func(*message.Message) error) (transport.Subscription, error) {
	sub, err := p.Transport.SubscribeHandler(ctx, topic, opts, h)
	if err != nil || topic != "slow" {
		return sub, err
	}
	return slowSub{sub, p}, nil
}

// TestResumeWhileTheDrainPausesOthers: the drain pauses the served feeds one
// subscription after another; a Resume of a subscription the drain has already paused,
// while it is still pausing the next, leaves it paused (it would hand out messages the
// engine only nacks, again and again, for the rest of the drain).
func TestResumeWhileTheDrainPausesOthers(t *testing.T) {
	mem := newMemory(t, memory.Config{NackDelay: time.Millisecond})
	defer mem.Close()
	tr := &slowPause{Transport: mem, pausing: make(chan struct{}), release: make(chan struct{})}
	e := engine.New(engine.Config{Transport: tr, Drain: wait})
	a := add(t, e, "a", transport.SubscribeOptions{Group: "g"}, func(*message.Message) error { return nil })
	add(t, e, "slow", transport.SubscribeOptions{Group: "g"}, func(*message.Message) error { return nil })
	stop := run(t, e)
	stopped := stopInBackground(stop)
	select {
	case <-tr.pausing: // the drain paused a's feed and is pausing slow's
	case <-time.After(wait):
		t.Fatal("the drain did not pause the second subscription")
	}
	a.Resume()
	h := a.Health(time.Minute)
	close(tr.release)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if len(h.Partitions) != 1 || !h.Partitions[0].Paused {
		t.Errorf("a's partitions after a Resume during the drain: %+v; want the one partition paused", h.Partitions)
	}
}

// TestRemoveDuringDrain: a subscription removed while the drain runs (a Subscribe that
// failed to register as Close began) does not race with the drain's walk over the
// subscriptions (the race detector found it when the drain read the list unlocked).
func TestRemoveDuringDrain(t *testing.T) {
	mem := newMemory(t, memory.Config{})
	defer mem.Close()
	e := engine.New(engine.Config{Transport: mem, Drain: wait})
	var subs []*engine.Sub
	for i := range 20 {
		subs = append(subs, add(t, e, fmt.Sprintf("remove-%d", i), transport.SubscribeOptions{Group: "g"}, func(*message.Message) error { return nil }))
	}
	stop := run(t, e)
	stopped := stopInBackground(stop)
	<-e.Draining()
	for _, s := range subs[:10] {
		e.Remove(s)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}

// TestResumeDuringDrainKeepsServedFeedPaused: once the drain began, a feed whose
// transport runs the chain is paused (it would hand out messages only for the engine
// to nack them), and a Resume then leaves it paused; the handler in flight finishes.
func TestResumeDuringDrainKeepsServedFeedPaused(t *testing.T) {
	tr := newMemory(t, memory.Config{})
	defer tr.Close()
	e := engine.New(engine.Config{Transport: tr, Drain: wait})
	started, release := make(chan struct{}, 10), make(chan struct{})
	sub := add(t, e, "resumedrain", transport.SubscribeOptions{Group: "g"}, func(msg *message.Message) error {
		started <- struct{}{}
		<-release
		return nil
	})
	stop := run(t, e)
	publish(t, tr, "resumedrain", "a", "b")
	select {
	case <-started:
	case <-time.After(wait):
		t.Fatal("the first message was not handled")
	}
	stopped := stopInBackground(stop)
	select {
	case <-e.Draining():
	case <-time.After(wait):
		t.Fatal("the drain did not begin")
	}
	sub.Resume()
	h := sub.Health(time.Minute)
	if len(h.Partitions) != 1 || !h.Partitions[0].Paused {
		t.Errorf("partitions after Resume during the drain: %+v; want the one partition paused", h.Partitions)
	}
	close(release)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
		t.Error("a second message was handled during the drain")
	default:
	}
}
