package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/middleware"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/memory"
	"github.com/pubsubkit/pubsub/transport/watermilladapter"
)

func TestBackoffKnative(t *testing.T) {
	exp := middleware.ExponentialBackoff(5*time.Second, 0)
	lin := middleware.LinearBackoff(5*time.Second, 0)
	for n, want := range map[int]time.Duration{1: 10 * time.Second, 2: 20 * time.Second, 3: 40 * time.Second} {
		if got := exp(n); got != want {
			t.Errorf("exponential retry %d: %v, want %v", n, got, want)
		}
	}
	for n, want := range map[int]time.Duration{1: 5 * time.Second, 2: 10 * time.Second, 3: 15 * time.Second} {
		if got := lin(n); got != want {
			t.Errorf("linear retry %d: %v, want %v", n, got, want)
		}
	}
	capped := middleware.ExponentialBackoff(5*time.Second, 30*time.Second)
	if got := capped(3); got != 30*time.Second {
		t.Errorf("capped retry 3: %v, want 30s", got)
	}
	if got := capped(200); got != 30*time.Second {
		t.Errorf("capped retry 200: %v, want 30s (no overflow)", got)
	}
	if got := middleware.ExponentialBackoff(time.Second, 0)(100); got <= 0 {
		t.Errorf("uncapped retry 100 overflowed to %v", got)
	}
	if got := middleware.LinearBackoff(time.Hour, time.Minute)(1 << 40); got != time.Minute {
		t.Errorf("linear capped at a minute gave %v", got)
	}
}

// runRouter runs a plain Watermill router with the given middleware over one handler
// on topic "jobs" of tr, until the test ends.
func runRouter(t *testing.T, tr transport.Transport, topic string, h message.NoPublishHandlerFunc, mw ...message.HandlerMiddleware) {
	t.Helper()
	router, err := message.NewRouter(message.RouterConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	router.AddMiddleware(mw...)
	router.AddConsumerHandler(topic, topic, watermilladapter.NewSubscriber(tr, transport.SubscribeOptions{Group: "workers"}), h)
	go router.Run(context.Background())
	t.Cleanup(func() { router.Close() })
	<-router.Running()
}

func newMemory(t *testing.T) *memory.Transport {
	t.Helper()
	tr, err := memory.New(memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// TestRetryInPlaceOnPlainRouter: Retry retries in place with exact waits, numbers the
// attempts, skips Permanent errors and holds back the message behind.
func TestRetryInPlaceOnPlainRouter(t *testing.T) {
	tr := newMemory(t)
	deadLetter, _ := middleware.DeadLetter(middleware.DeadLetterConfig{Publisher: tr, Topic: "jobs.dlq", Group: "workers"})
	var mu sync.Mutex
	var log []string
	var times []time.Time
	runRouter(t, tr, "jobs", func(msg *message.Message) error {
		mu.Lock()
		log = append(log, string(msg.Payload)+"#"+msg.Metadata.Get(metadata.Attempt))
		if string(msg.Payload) == "flaky" {
			times = append(times, time.Now())
		}
		mu.Unlock()
		switch string(msg.Payload) {
		case "flaky":
			if msg.Metadata.Get(metadata.Attempt) != "3" {
				return errors.New("not yet")
			}
		case "doomed":
			return middleware.Permanent(errors.New("never"))
		}
		return nil
	}, deadLetter, must(middleware.Retry(middleware.RetryConfig{MaxRetries: 3, Backoff: middleware.ExponentialBackoff(20*time.Millisecond, 0)})))
	deadSub, _ := tr.Subscribe(context.Background(), "jobs.dlq", transport.SubscribeOptions{Group: "ops"})
	dead := deadSub.Messages()
	_ = tr.Publish("jobs", message.NewMessage("1", []byte("flaky")), message.NewMessage("2", []byte("doomed")), message.NewMessage("3", []byte("fine")))

	select {
	case d := <-dead:
		if string(d.Payload) != "doomed" || d.Metadata.Get(metadata.DeadLetterAttempts) != "1" || d.Metadata.Get(metadata.DeadLetterPermanent) != "true" {
			t.Errorf("dead letter %s with %v", d.Payload, d.Metadata)
		}
		d.Ack()
	case <-time.After(5 * time.Second):
		t.Fatal("the permanent failure was not dead-lettered")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(log)
		mu.Unlock()
		if n >= 5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(log) != "[flaky#1 flaky#2 flaky#3 doomed#1 fine#1]" {
		t.Fatalf("handled %v", log)
	}
	for i, want := range []time.Duration{40 * time.Millisecond, 80 * time.Millisecond} {
		if gap, late := times[i+1].Sub(times[i]), want+max(time.Second, want); gap < want || gap > late {
			t.Errorf("retry %d came %v after the attempt before it, want %v to %v", i+1, gap, want, late)
		}
	}
}

// TestRetryStopEndsTheWait: closing Stop ends a wait at once with ErrInterrupted, which
// DeadLetter does not dead-letter.
func TestRetryStopEndsTheWait(t *testing.T) {
	stop := make(chan struct{})
	h := must(middleware.Retry(middleware.RetryConfig{MaxRetries: 1, Backoff: middleware.LinearBackoff(time.Hour, 0), Stop: stop}))(
		func(*message.Message) ([]*message.Message, error) { return nil, errors.New("down") })
	time.AfterFunc(50*time.Millisecond, func() { close(stop) })
	start := time.Now()
	_, err := h(message.NewMessage("1", nil))
	if !errors.Is(err, middleware.ErrInterrupted) || time.Since(start) > 10*time.Second {
		t.Fatalf("after %v: %v", time.Since(start), err)
	}
}

// TestTimeoutFreshPerAttempt: each retry gets its own deadline, so a retry after a
// timeout is not cut off at once (Watermill #467).
func TestTimeoutFreshPerAttempt(t *testing.T) {
	var budgets []time.Duration
	h := must(middleware.Retry(middleware.RetryConfig{MaxRetries: 2}))(must(middleware.Timeout(100 * time.Millisecond))(
		func(msg *message.Message) ([]*message.Message, error) {
			dl, _ := msg.Context().Deadline()
			budgets = append(budgets, time.Until(dl))
			if len(budgets) < 3 {
				<-msg.Context().Done()
				return nil, msg.Context().Err()
			}
			return nil, nil
		}))
	msg := message.NewMessage("1", nil)
	if _, err := h(msg); err != nil {
		t.Fatal(err)
	}
	for i, b := range budgets {
		if b < 50*time.Millisecond {
			t.Errorf("attempt %d started with %v left, want a fresh 100ms", i+1, b)
		}
	}
	if _, has := msg.Context().Deadline(); has {
		t.Error("the message kept the attempt's deadline after the handler returned")
	}
	single := must(middleware.Timeout(10 * time.Millisecond))(func(msg *message.Message) ([]*message.Message, error) {
		<-msg.Context().Done()
		return nil, msg.Context().Err()
	})
	if _, err := single(message.NewMessage("2", nil)); !errors.Is(err, middleware.ErrAttemptTimeout) {
		t.Fatalf("an attempt past its deadline: %v, want ErrAttemptTimeout", err)
	}
}

// TestRetryTopicOnPlainRouter: unordered retries through retry topics on a plain
// router. The failed message moves to "jobs.retry.<n>", the message behind it is
// handled at once, and the retry comes back no earlier than due.
func TestRetryTopicOnPlainRouter(t *testing.T) {
	tr := newMemory(t)
	backoff := middleware.ExponentialBackoff(25*time.Millisecond, 0)
	retryTopic := func(n int) string { return "jobs.retry." + strconv.Itoa(n) }
	requeue, err := middleware.RetryTopic(middleware.RetryTopicConfig{Publisher: tr, Topic: retryTopic, MaxRetries: 2, Backoff: backoff})
	if err != nil {
		t.Fatal(err)
	}
	type seen struct {
		payload string
		attempt string
		at      time.Time
	}
	got := make(chan seen, 10)
	handler := func(msg *message.Message) error {
		got <- seen{string(msg.Payload), msg.Metadata.Get(metadata.Attempt), time.Now()}
		if string(msg.Payload) == "slow" && msg.Metadata.Get(metadata.Attempt) != "3" {
			return errors.New("not yet")
		}
		return nil
	}
	runRouter(t, tr, "jobs", handler, requeue)
	for n := 1; n <= 2; n++ {
		runRouter(t, tr, retryTopic(n), handler, must(middleware.WaitDue(middleware.WaitDueConfig{})), requeue)
	}
	_ = tr.Publish("jobs", message.NewMessage("1", []byte("slow")), message.NewMessage("2", []byte("quick")))
	var order []seen
	for len(order) < 4 {
		select {
		case s := <-got:
			order = append(order, s)
		case <-time.After(5 * time.Second):
			t.Fatalf("saw only %v", order)
		}
	}
	if order[0].payload != "slow" || order[1].payload != "quick" || order[2].attempt != "2" || order[3].attempt != "3" {
		t.Fatalf("order %v: want slow#1, quick#1, slow#2, slow#3", order)
	}
	for n, pair := range [][2]seen{{order[0], order[2]}, {order[2], order[3]}} {
		gap, want := pair[1].at.Sub(pair[0].at), backoff(n+1)
		if gap < want || gap > want+want/10+100*time.Millisecond {
			t.Errorf("retry %d came %v after the attempt before it, want %v", n+1, gap, want)
		}
	}
}

// failingPublisher refuses every message.
type failingPublisher struct{}

func (failingPublisher) Publish(string, ...*message.Message) error { return errors.New("broker down") }
func (failingPublisher) Close() error                              { return nil }

// TestRetryTopicPublishFailureRedelivers: when the retry cannot be published, the
// error wraps ErrRetryPublish and DeadLetter passes it through, so the message is
// nacked (redelivered), neither acked nor dead-lettered.
func TestRetryTopicPublishFailureRedelivers(t *testing.T) {
	requeue, _ := middleware.RetryTopic(middleware.RetryTopicConfig{Publisher: failingPublisher{},
		Topic: func(int) string { return "jobs.retry.1" }, MaxRetries: 1})
	dlqPub := &recordingPublisher{}
	deadLetter, _ := middleware.DeadLetter(middleware.DeadLetterConfig{Publisher: dlqPub, Topic: "jobs.dlq"})
	h := deadLetter(requeue(func(*message.Message) ([]*message.Message, error) { return nil, errors.New("failed") }))
	_, err := h(message.NewMessage("1", nil))
	if !errors.Is(err, middleware.ErrRetryPublish) {
		t.Fatalf("error %v does not wrap ErrRetryPublish: the message would be acked", err)
	}
	if dlqPub.n != 0 {
		t.Fatal("a message whose retry could not be published was dead-lettered")
	}
}

type recordingPublisher struct{ n int }

func (r *recordingPublisher) Publish(string, ...*message.Message) error { r.n++; return nil }
func (r *recordingPublisher) Close() error                              { return nil }

// must is the middleware of a constructor that a test knows succeeds.
func must(mw message.HandlerMiddleware, err error) message.HandlerMiddleware {
	if err != nil {
		panic(err)
	}
	return mw
}
