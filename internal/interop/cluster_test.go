package interop

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	pubsub "github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/internal/kafkatest"
)

// waitTimeout bounds every wait for messages to arrive.
const waitTimeout = 30 * time.Second

// brokers is the cluster's bootstrap list as librdkafka and kcat take it.
func brokers(c *kafkatest.Cluster) string { return strings.Join(c.Addrs, ",") }

// rdkafka returns librdkafka settings for the cluster with extra merged in.
func rdkafka(c *kafkatest.Cluster, extra map[string]any) map[string]any {
	cfg := map[string]any{"bootstrap.servers": brokers(c)}
	for k, v := range extra {
		cfg[k] = v
	}
	return cfg
}

// admin returns a kadm client on the cluster, closed when the test ends.
func admin(t testing.TB, c *kafkatest.Cluster) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs...))
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// createTopic creates topic with partitions partitions on the cluster.
func createTopic(t testing.TB, c *kafkatest.Cluster, topic string, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := admin(t, c).CreateTopic(ctx, partitions, -1, nil, topic); err != nil {
		t.Fatalf("creating topic %s: %v", topic, err)
	}
}

// openClient opens a pubsubkit client on the cluster's kafka:// URL with params,
// closed when the test ends.
func openClient(t testing.TB, c *kafkatest.Cluster, params string, opts ...pubsub.Option) *pubsub.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	client, err := pubsub.Open(ctx, c.URL(params), opts...)
	if err != nil {
		t.Fatalf("pubsub.Open: %v", err)
	}
	t.Cleanup(func() {
		if err := client.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return client
}

// run runs client until the test ends and waits until it consumes.
func run(t testing.TB, client *pubsub.Client) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- client.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, pubsub.ErrClosed) {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-client.Running():
	case err := <-done:
		t.Fatalf("Run returned before consuming: %v", err)
	case <-time.After(waitTimeout):
		t.Fatal("the client did not start consuming")
	}
}

// sink collects what a handler receives.
type sink[T any] struct {
	mu   sync.Mutex
	got  []*pubsub.Message[T]
	more chan struct{} // receives after each message
}

func newSink[T any]() *sink[T] { return &sink[T]{more: make(chan struct{}, 1)} }

// handle is a pubsub.Handler that keeps every message and acks it.
func (s *sink[T]) handle(_ context.Context, m *pubsub.Message[T]) error {
	s.add(m)
	return nil
}

func (s *sink[T]) add(m *pubsub.Message[T]) {
	s.mu.Lock()
	s.got = append(s.got, m)
	s.mu.Unlock()
	select {
	case s.more <- struct{}{}:
	default:
	}
}

// messages returns what arrived so far.
func (s *sink[T]) messages() []*pubsub.Message[T] {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*pubsub.Message[T](nil), s.got...)
}

// wait returns the messages once done says they are all there; the test fails after
// waitTimeout.
func (s *sink[T]) wait(t testing.TB, what string, done func([]*pubsub.Message[T]) bool) []*pubsub.Message[T] {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		got := s.messages()
		if done(got) {
			return got
		}
		select {
		case <-s.more:
		case <-deadline:
			t.Fatalf("waiting for %s: got %d messages after %v", what, len(got), waitTimeout)
		}
	}
}

// atLeast is a wait condition: n messages or more.
func atLeast[T any](n int) func([]*pubsub.Message[T]) bool {
	return func(got []*pubsub.Message[T]) bool { return len(got) >= n }
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustJSON(t testing.TB, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("decoding %q: %v", s, err)
	}
}
