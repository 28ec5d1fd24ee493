package pubsub_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/pubsubtest"
)

func TestDeliveryBackoff(t *testing.T) {
	d := pubsub.Delivery{Retry: 3, BackoffDelay: 5 * time.Second}
	for n, want := range []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second} {
		if got := d.Backoff(n + 1); got != want {
			t.Errorf("exponential retry %d waits %v, want %v", n+1, got, want)
		}
	}
	d.BackoffPolicy, d.MaxBackoff = pubsub.BackoffLinear, 12*time.Second
	for n, want := range []time.Duration{5 * time.Second, 10 * time.Second, 12 * time.Second} {
		if got := d.Backoff(n + 1); got != want {
			t.Errorf("linear capped retry %d waits %v, want %v", n+1, got, want)
		}
	}
}

func TestDeliveryValidation(t *testing.T) {
	h := pubsubtest.New(t)
	topic := pubsub.NewTopic[int]("validation")
	noop := func(context.Context, *pubsub.Message[int]) error { return nil }
	for _, d := range []pubsub.Delivery{
		{Retry: -1},
		{BackoffDelay: -time.Second},
		{Timeout: -1},
		{BackoffPolicy: 7},
		{Ordering: 9},
		{DeadLetterTopic: "has space"},
		{Retry: 1 << 40},
		{Retry: pubsub.MaxDeliveryRetry + 1},
		{BackoffDelay: 100 * 365 * 24 * time.Hour},
		{MaxBackoff: 30 * 24 * time.Hour},
		{Timeout: 48 * time.Hour},
	} {
		if err := pubsub.Subscribe(h.Client, topic, "g", noop, pubsub.WithDelivery(d)); !errors.Is(err, pubsub.ErrInvalidOption) {
			t.Errorf("Delivery %+v: %v, want ErrInvalidOption", d, err)
		}
	}
	if _, err := pubsub.Open(context.Background(), "memory://", pubsub.WithDefaultDelivery(pubsub.Delivery{Retry: -2})); !errors.Is(err, pubsub.ErrInvalidOption) {
		t.Errorf("WithDefaultDelivery with Retry -2: %v", err)
	}
	// Without MaxBackoff no wait exceeds MaxDeliveryWait, so a retry never outlives a
	// retry topic's retention.
	if got := (pubsub.Delivery{Retry: 100, BackoffDelay: time.Hour}).Backoff(100); got != pubsub.MaxDeliveryWait {
		t.Errorf("retry 100 of an hourly exponential backoff waits %v, want %v", got, pubsub.MaxDeliveryWait)
	}
	// The largest sensible policy is accepted.
	most := pubsub.Delivery{Retry: pubsub.MaxDeliveryRetry, BackoffDelay: pubsub.MaxDeliveryDelay, MaxBackoff: pubsub.MaxDeliveryWait, Timeout: pubsub.MaxDeliveryTimeout}
	if err := pubsub.Subscribe(h.Client, topic, "most", noop, pubsub.WithDelivery(most)); err != nil {
		t.Errorf("Delivery %+v: %v", most, err)
	}
}

// TestDefaultAndPerSubscriptionDelivery: WithDefaultDelivery applies to subscriptions
// without WithDelivery; WithDelivery replaces it; DeadLetterTopic and Timeout apply.
func TestDefaultAndPerSubscriptionDelivery(t *testing.T) {
	h := pubsubtest.New(t, pubsub.WithDefaultDelivery(pubsub.Delivery{Retry: 2, BackoffDelay: time.Millisecond}))
	topic := pubsub.NewTopic[int]("defaults")
	fail := func(_ context.Context, m *pubsub.Message[int]) error { return errors.New("no") }
	if err := pubsub.Subscribe(h.Client, topic, "inherits", fail); err != nil {
		t.Fatal(err)
	}
	slow := func(ctx context.Context, m *pubsub.Message[int]) error {
		<-ctx.Done() // never finishes in time
		return ctx.Err()
	}
	if err := pubsub.Subscribe(h.Client, topic, "own", slow, pubsub.WithDelivery(pubsub.Delivery{
		Timeout: 20 * time.Millisecond, DeadLetterTopic: "defaults.parking",
	})); err != nil {
		t.Fatal(err)
	}
	if err := pubsub.Publish(context.Background(), h.Client, topic, 1); err != nil {
		t.Fatal(err)
	}
	inherited := h.WaitDeadLettered(topic.Name(), "inherits", 1)
	if inherited[0].Attempt != 3 {
		t.Errorf("default Retry 2: dead-lettered after %d attempts, want 3", inherited[0].Attempt)
	}
	own := h.WaitDeadLettered(topic.Name(), "own", 1)
	if own[0].Attempt != 1 || !errors.Is(own[0].Err, context.DeadlineExceeded) {
		t.Errorf("own Delivery (no retries, 20ms timeout): attempt %d, error %v", own[0].Attempt, own[0].Err)
	}
	letters, err := h.Client.DeadLetters(context.Background(), topic.Name(), "own")
	if err != nil || len(letters) != 1 {
		t.Fatalf("dead letters in the custom topic: %v, %v", letters, err)
	}
	if letters[0].Reason == "" || letters[0].Attempts != 1 {
		t.Errorf("dead letter %+v", letters[0])
	}
	retried := h.Events(pubsub.EventRetried, topic.Name(), "inherits")
	if len(retried) != 2 {
		t.Errorf("%d retried events for 2 retries", len(retried))
	}
}

// TestPermanentPanics: with WithPermanentPanics a panic is dead-lettered at once,
// marked permanent; without it, it is retried like an error.
func TestPermanentPanics(t *testing.T) {
	h := pubsubtest.New(t, pubsub.WithDefaultDelivery(pubsub.Delivery{Retry: 2, BackoffDelay: time.Millisecond}))
	topic := pubsub.NewTopic[int]("panics")
	boom := func(context.Context, *pubsub.Message[int]) error { panic("nil order") }
	if err := pubsub.Subscribe(h.Client, topic, "strict", boom, pubsub.WithPermanentPanics()); err != nil {
		t.Fatal(err)
	}
	if err := pubsub.Subscribe(h.Client, topic, "lenient", boom); err != nil {
		t.Fatal(err)
	}
	if err := pubsub.Publish(context.Background(), h.Client, topic, 1); err != nil {
		t.Fatal(err)
	}
	if got := h.WaitDeadLettered(topic.Name(), "strict", 1)[0]; got.Attempt != 1 || !pubsub.IsPermanent(got.Err) {
		t.Errorf("permanent panic: attempt %d, permanent %v", got.Attempt, pubsub.IsPermanent(got.Err))
	}
	if got := h.WaitDeadLettered(topic.Name(), "lenient", 1)[0]; got.Attempt != 3 || pubsub.IsPermanent(got.Err) {
		t.Errorf("ordinary panic: attempt %d, permanent %v; want 3 attempts", got.Attempt, pubsub.IsPermanent(got.Err))
	}
}

func TestSubscriptionTopicNamesFitKafka(t *testing.T) {
	h := pubsubtest.New(t)
	topic := pubsub.NewTopic[int](strings.Repeat("t", 150))
	noop := func(context.Context, *pubsub.Message[int]) error { return nil }
	err := pubsub.Subscribe(h.Client, topic, strings.Repeat("g", 100), noop)
	if !errors.Is(err, pubsub.ErrInvalidOption) || !strings.Contains(err.Error(), "249") {
		t.Fatalf("a subscription whose derived topics exceed 249 characters: %v", err)
	}
	if err := pubsub.Subscribe(h.Client, topic, "g", noop); err != nil {
		t.Fatalf("a 150-character topic with a short group: %v", err)
	}
}
