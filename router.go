package pubsub

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/internal/engine"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/watermilladapter"
)

// SubscribeOnRouter registers h for the messages of topic t in consumer group group
// on r, a Watermill Router the program runs itself, instead of on the client's own
// engine. Each of the subscription's feeds (its topic, replay topic and retry topics)
// becomes a handler of r named "<feed topic>/<feed group>", with the same chain,
// Delivery policy, dead letters and replay as Subscribe; r.Run drives them, and
// Client.Run need not run for them. Added while r runs, they start at once.
// DeadLetters, Replay, Discard, Health, Pause and Resume cover the subscription as
// any other.
//
// The Router dispatches as it always does (a goroutine per message, as many as the
// transport hands out); its Close ends the feeds' subscriptions, and with them the
// retry waits in progress (those messages come back later). Stop the Router with
// Close: feeds added while it runs are started with RunHandlers, not under the
// context given to Run. A handler keeps its
// context until the client's Close. Arguments are checked as Subscribe checks them.
// SubscribeOnRouter is safe for concurrent use.
func SubscribeOnRouter[T any](r *message.Router, c *Client, t Topic[T], group string, h Handler[T], opts ...SubscribeOption) error {
	if r == nil {
		return fmt.Errorf("pubsub: %w: SubscribeOnRouter(%q, %q) with a nil router", ErrInvalidOption, t.name, group)
	}
	s, feeds, err := newSubscription(c, t, group, h, opts)
	if err != nil {
		return err
	}
	return c.register(s, func() (runner, error) {
		run := &routerRun{subs: make([]*watermilladapter.Subscriber, len(feeds))}
		for i, f := range feeds {
			run.subs[i] = watermilladapter.NewSubscriber(c.tr, f.Options)
			r.AddConsumerHandler(f.Topic+"/"+f.Options.Group, f.Topic, run.subs[i], message.NoPublishHandlerFunc(f.Handler))
		}
		if r.IsRunning() {
			if err := r.RunHandlers(context.Background()); err != nil {
				return nil, err
			}
		}
		return run, nil
	})
}

// routerRun is a subscription a Watermill Router runs: one watermilladapter.Subscriber per
// feed.
type routerRun struct {
	subs []*watermilladapter.Subscriber
}

func (r *routerRun) Health(stallAfter time.Duration) engine.Health {
	feeds := make([][]transport.Subscription, len(r.subs))
	for i, sub := range r.subs {
		feeds[i] = sub.Subscriptions()
	}
	return engine.HealthOf(len(feeds[0]) > 0, r.subs[0].Paused(), feeds, stallAfter)
}

func (r *routerRun) Pause() {
	for _, sub := range r.subs {
		sub.Pause()
	}
}

func (r *routerRun) Resume() {
	for _, sub := range r.subs {
		sub.Resume()
	}
}
