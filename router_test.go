package pubsub_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/transport/memory"
)

// TestSubscribeOnRouter: a subscription mounted on a plain Watermill Router, which
// the program runs without Client.Run, gets the client's chain and policy (a failing
// message is retried, then dead-lettered), its dead letters can be listed and
// replayed to it through its replay topic, and Health and Pause cover it. A
// subscription added while the Router runs starts at once.
func TestSubscribeOnRouter(t *testing.T) {
	tr, err := memory.New(memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := pubsub.New(tr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 15 * time.Second}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	topic := pubsub.NewTopic[string]("on-router")
	handled := make(chan string, 10)
	attempts := make(chan int, 10)
	fixed := make(chan struct{})
	must(t, pubsub.SubscribeOnRouter(router, c, topic, "g", func(_ context.Context, m *pubsub.Message[string]) error {
		if m.Payload == "bad" {
			select {
			case <-fixed:
			default:
				attempts <- m.Attempt
				return errors.New("not today")
			}
		}
		handled <- m.Payload
		return nil
	}, pubsub.WithDelivery(pubsub.Delivery{Retry: 1, BackoffDelay: time.Millisecond})))
	if err := pubsub.SubscribeOnRouter(router, c, topic, "g", func(context.Context, *pubsub.Message[string]) error { return nil }); !errors.Is(err, pubsub.ErrInvalidOption) {
		t.Fatalf("a second handler for the same subscription: %v; want ErrInvalidOption", err)
	}
	ran := make(chan error, 1)
	go func() { ran <- router.Run(context.Background()) }()
	defer func() {
		if err := router.Close(); err != nil {
			t.Errorf("router.Close: %v", err)
		}
		if err := <-ran; err != nil {
			t.Errorf("router.Run: %v", err)
		}
	}()
	<-router.Running()

	must(t, pubsub.Publish(context.Background(), c, topic, "good"))
	must(t, pubsub.Publish(context.Background(), c, topic, "bad"))
	wait := func(ch <-chan string, want string) {
		t.Helper()
		select {
		case got := <-ch:
			if got != want {
				t.Fatalf("handled %q; want %q", got, want)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("%q not handled", want)
		}
	}
	wait(handled, "good")
	for _, want := range []int{1, 2} {
		select {
		case got := <-attempts:
			if got != want {
				t.Fatalf("attempt %d; want %d", got, want)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("attempt %d never came", want)
		}
	}
	var letters []pubsub.DeadLetter
	deadline := time.Now().Add(15 * time.Second)
	for len(letters) == 0 && time.Now().Before(deadline) {
		letters, err = c.DeadLetters(context.Background(), topic.Name(), "g")
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(letters) != 1 {
		t.Fatalf("%d dead letters; want the failed message", len(letters))
	}

	h := c.Health()
	if len(h) != 1 || !h[0].Consuming || h[0].Paused {
		t.Fatalf("Health: %+v; want one consuming subscription", h)
	}
	must(t, c.Pause(topic.Name(), "g"))
	if h := c.Health(); !h[0].Paused {
		t.Fatalf("Health after Pause: %+v", h)
	}
	must(t, c.Resume(topic.Name(), "g"))

	late := pubsub.NewTopic[string]("on-router-late") // added while the router runs
	must(t, pubsub.SubscribeOnRouter(router, c, late, "g", func(_ context.Context, m *pubsub.Message[string]) error {
		handled <- m.Payload
		return nil
	}))
	must(t, pubsub.Publish(context.Background(), c, late, "late"))
	wait(handled, "late")

	close(fixed)
	if n, err := c.Replay(context.Background(), topic.Name(), "g", pubsub.ReplayAll()); err != nil || n != 1 {
		t.Fatalf("Replay: %d, %v", n, err)
	}
	wait(handled, "bad")
}
