package middleware_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/middleware"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/memory"
	"github.com/pubsubkit/pubsub/transport/watermilladapter"
)

// TestTrustAndDetachOnPlainRouter: on a plain Watermill router, Trust drops the
// bookkeeping keys a record brings to the subscription's topic, and Detach gives the
// handler a context that outlives the message's: the router's Close, which cancels
// the message's context, does not cut the handler short.
func TestTrustAndDetachOnPlainRouter(t *testing.T) {
	tr, err := memory.New(memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	trust, err := middleware.Trust(middleware.TrustConfig{Feed: middleware.FeedTopic})
	if err != nil {
		t.Fatal(err)
	}
	life, end := context.WithCancel(context.Background())
	defer end()
	router, _ := message.NewRouter(message.RouterConfig{CloseTimeout: 15 * time.Second}, nil)
	outer := make(chan context.Context, 1) // the message's own context, outside Detach
	seeOuter := func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			outer <- msg.Context()
			return h(msg)
		}
	}
	router.AddMiddleware(trust, seeOuter, middleware.Detach(life))
	attempts := make(chan string, 1)
	release := make(chan struct{})
	ctxErr := make(chan error, 1)
	router.AddConsumerHandler("trust", "trust", watermilladapter.NewSubscriber(tr, transport.SubscribeOptions{Group: "g"}), func(msg *message.Message) error {
		attempts <- msg.Metadata.Get(metadata.Attempt)
		<-release
		ctxErr <- msg.Context().Err()
		return nil
	})
	go router.Run(context.Background())
	<-router.Running()
	m := message.NewMessage("1", []byte("x"))
	m.Metadata.Set(metadata.Attempt, "7") // a producer cannot skip a subscription's retries
	if err := tr.Publish("trust", m); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-attempts:
		if a != "" {
			t.Fatalf("the handler saw attempt %q; Trust drops it on the topic", a)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("not handled")
	}
	closed := make(chan error, 1)
	go func() { closed <- router.Close() }()
	select {
	case <-(<-outer).Done(): // the router's close ended the message's context
	case <-time.After(15 * time.Second):
		t.Fatal("the router's Close did not end the message's context")
	}
	close(release)
	if err := <-ctxErr; err != nil {
		t.Fatalf("the handler's context ended with the router's close (%v); Detach gives it its life's", err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}

func TestTrustConfigChecked(t *testing.T) {
	if _, err := middleware.Trust(middleware.TrustConfig{Feed: middleware.FeedRetry}); !errors.Is(err, transport.ErrInvalidOption) {
		t.Fatalf("a retry feed without its retry: %v", err)
	}
}
