package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/console"
)

type payment struct {
	ID     string `json:"id"`
	Amount int    `json:"amount"`
}

// fixture is a running memory client whose "payments"/"ledger" subscription holds
// six dead letters: three over the limit, two negative (permanent) and one "ledger
// closed"; and the console of it served under /ops/.
type fixture struct {
	c     *pubsub.Client
	srv   *httptest.Server
	topic string
}

const topic, group = "payments", "ledger"

func newFixture(t *testing.T, opts ...console.Option) *fixture {
	t.Helper()
	return newFixtureOn(t, "memory://", topic, opts...)
}

// newFixtureOn is newFixture on the transport of url, with the topic named topic.
func newFixtureOn(t *testing.T, url, topic string, opts ...console.Option) *fixture {
	t.Helper()
	c, err := pubsub.Open(context.Background(), url, pubsub.WithEventHistory(1000))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	payments := pubsub.NewTopic[payment](topic, pubsub.WithKey(func(p payment) string { return p.ID }))
	err = pubsub.Subscribe(c, payments, group, func(_ context.Context, m *pubsub.Message[payment]) error {
		switch a := m.Payload.Amount; {
		case a < 0:
			return pubsub.Permanent(fmt.Errorf("payment %s has a negative amount", m.Payload.ID))
		case a == 13:
			return pubsub.Permanent(fmt.Errorf("ledger closed"))
		case a > 100:
			return fmt.Errorf("account %d is over its limit", a*7)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	runClient(t, c)
	for i, amount := range []int{500, 600, -1, 700, -2, 13, 5} {
		err := pubsub.Publish(context.Background(), c, payments, payment{ID: fmt.Sprintf("p-%d", i), Amount: amount},
			pubsub.WithCorrelationID(fmt.Sprintf("cid-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
	}
	f := &fixture{c: c, topic: topic}
	f.waitPending(t, 6)
	h, err := console.Handler(c, opts...)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ops/", http.StripPrefix("/ops", h))
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// runClient runs c until the test ends.
func runClient(t testing.TB, c *pubsub.Client) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// waitPending waits until the subscription has n pending dead letters.
func (f *fixture) waitPending(t *testing.T, n int) []pubsub.DeadLetter {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		letters, err := f.c.DeadLetters(context.Background(), f.topic, group)
		if err != nil {
			t.Fatal(err)
		}
		if len(letters) == n {
			return letters
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d pending dead letters, want %d", len(letters), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (f *fixture) letters(t *testing.T, filters ...pubsub.DeadLetterFilter) []pubsub.DeadLetter {
	t.Helper()
	letters, err := f.c.DeadLetters(context.Background(), f.topic, group, filters...)
	if err != nil {
		t.Fatal(err)
	}
	return letters
}

func (f *fixture) resolved(t *testing.T) []pubsub.Resolution {
	t.Helper()
	r, err := f.c.Resolved(context.Background(), f.topic, group)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
