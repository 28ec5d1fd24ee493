package pubsub_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	neturl "net/url"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/pubsubtest"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/memory"
)

type order struct {
	ID string `json:"id"`
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		url      string
		sentinel error
		contains []string
		hidden   string
	}{
		{"kafak://b:9092", pubsub.ErrUnknownScheme, []string{`"kafak"`, "known: gochannel, kafka, memory"}, ""},
		{"memory://?max_retained=10&bogus=1&other=2", pubsub.ErrInvalidOption, []string{"bogus, other", "accepted:", "max_retained"}, ""},
		{"memory://?max_retained=lots", pubsub.ErrInvalidOption, []string{`max_retained="lots"`}, ""},
		{"memory://?nack_delay=-1s", pubsub.ErrInvalidOption, []string{"NackDelay"}, ""},
		{"memory://user:s3cret@host", pubsub.ErrInvalidOption, []string{"no host"}, "s3cret"},
		{"://nope", pubsub.ErrInvalidOption, []string{"cannot parse"}, ""},
		{"localhost:9092", pubsub.ErrUnknownScheme, []string{"known: gochannel, kafka, memory"}, ""},
		{"kafka://127.0.0.1:1?tls=true&tls_ca=/nonexistent/ca.pem", pubsub.ErrInvalidOption, []string{"TLS CA file", "/nonexistent/ca.pem"}, ""},
		{"kafka://127.0.0.1:1?tls=true&tls_cert=client_test.go&tls_key=client_test.go", pubsub.ErrInvalidOption, []string{"TLS client certificate"}, ""},
		{"kafka://127.0.0.1:1?partitions=many", pubsub.ErrInvalidOption, []string{`partitions="many"`}, ""},
		{"kafka://127.0.0.1:1?session_timeout=1ms", pubsub.ErrInvalidOption, []string{"session timeout"}, ""},
		{"kafka://", pubsub.ErrInvalidOption, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			c, err := pubsub.Open(ctx, tt.url)
			if err == nil {
				c.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, tt.sentinel) {
				t.Errorf("error %q does not wrap %v", err, tt.sentinel)
			}
			for _, s := range tt.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if !strings.HasPrefix(err.Error(), "pubsub: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if tt.hidden != "" && strings.Contains(err.Error(), tt.hidden) {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

// TestOpenWithRegistry: WithRegistry's registry is the one Open asks; starting from
// Transports() keeps the built-in schemes, and a zero Registry works too.
func TestOpenWithRegistry(t *testing.T) {
	opened := false
	open := func(context.Context, *neturl.URL, transport.OpenOptions) (transport.Transport, error) {
		opened = true
		return memory.New(memory.Config{})
	}
	r := pubsub.Transports()
	r.Register("test", open)
	c, err := pubsub.Open(context.Background(), "test://", pubsub.WithRegistry(r))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !opened {
		t.Fatal("the registered opener was not used")
	}
	_, err = pubsub.Open(context.Background(), "nope://", pubsub.WithRegistry(r))
	if err == nil || !strings.Contains(err.Error(), "known: gochannel, kafka, memory, test") {
		t.Fatalf("unknown scheme error %v does not list the built-in and the added schemes", err)
	}
	var only transport.Registry // the zero value works
	only.Register("test", open)
	if _, err := pubsub.Open(context.Background(), "memory://", pubsub.WithRegistry(&only)); !errors.Is(err, pubsub.ErrUnknownScheme) {
		t.Fatalf("memory:// on a registry without it: %v, want ErrUnknownScheme", err)
	}
}

func TestInvalidArguments(t *testing.T) {
	h := pubsubtest.New(t)
	ctx := context.Background()
	good := pubsub.NewTopic[order]("orders")
	handle := func(context.Context, *pubsub.Message[order]) error { return nil }
	cases := map[string]error{
		"empty topic":        pubsub.Publish(ctx, h.Client, pubsub.NewTopic[order](""), order{}),
		"topic with a space": pubsub.Publish(ctx, h.Client, pubsub.NewTopic[order]("my orders"), order{}),
		"WithKey of another type": pubsub.Publish(ctx, h.Client,
			pubsub.NewTopic[order]("orders", pubsub.WithKey(func(s string) string { return s })), order{}),
		"reserved metadata":  pubsub.Publish(ctx, h.Client, good, order{}, pubsub.WithMetadata(metadata.Attempt, "9")),
		"empty group":        pubsub.Subscribe(h.Client, good, "", handle),
		"nil handler":        pubsub.Subscribe(h.Client, good, "g", nil),
		"group with a slash": pubsub.Subscribe(h.Client, good, "a/b", handle),
	}
	for name, err := range cases {
		if !errors.Is(err, pubsub.ErrInvalidOption) {
			t.Errorf("%s: got %v, want ErrInvalidOption", name, err)
		}
	}
	if err := pubsub.Subscribe(h.Client, good, "g", handle); err != nil {
		t.Fatal(err)
	}
	if err := pubsub.Subscribe(h.Client, good, "g", handle); !errors.Is(err, pubsub.ErrInvalidOption) {
		t.Errorf("second handler for one topic and group: %v, want ErrInvalidOption", err)
	}
	for name, opt := range map[string]pubsub.Option{
		"WithDrainTimeout(0)": pubsub.WithDrainTimeout(0),
		"WithLogger(nil)":     pubsub.WithLogger(nil),
		"WithEventHook(nil)":  pubsub.WithEventHook(nil),
	} {
		if _, err := pubsub.Open(ctx, "memory://", opt); !errors.Is(err, pubsub.ErrInvalidOption) {
			t.Errorf("%s: got %v, want ErrInvalidOption", name, err)
		}
	}
	if _, err := pubsub.New(nil); !errors.Is(err, pubsub.ErrInvalidOption) {
		t.Errorf("New(nil): %v", err)
	}
}

// TestDrainLetsHandlersFinish: Close while a handler runs waits for it, with its
// context alive, and the message is acked.
func TestDrainLetsHandlersFinish(t *testing.T) {
	tr, _ := memory.New(memory.Config{})
	c, err := pubsub.New(tr, pubsub.WithDrainTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	topic := pubsub.NewTopic[order]("drain")
	started, finished := make(chan struct{}), make(chan error, 1)
	err = pubsub.Subscribe(c, topic, "g", func(ctx context.Context, m *pubsub.Message[order]) error {
		close(started)
		select {
		case <-time.After(300 * time.Millisecond):
			// A handler may still publish while the client drains.
			finished <- pubsub.Publish(ctx, c, pubsub.NewTopic[order]("drain.out"), m.Payload)
		case <-ctx.Done():
			finished <- ctx.Err()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- c.Run(context.Background()) }()
	if err := pubsub.Publish(context.Background(), c, topic, order{ID: "1"}); err != nil {
		t.Fatal(err)
	}
	<-started
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	if err := <-finished; err != nil {
		t.Fatalf("handler during the drain: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := pubsub.Subscribe(c, topic, "late", func(context.Context, *pubsub.Message[order]) error { return nil }); !errors.Is(err, pubsub.ErrClosed) {
		t.Fatalf("Subscribe after the drain: %v, want ErrClosed", err)
	}
	if err := <-runErr; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// TestDrainTimeout: a handler that outlives the drain timeout gets its context
// cancelled and Run reports ErrDrainTimeout.
func TestDrainTimeout(t *testing.T) {
	tr, _ := memory.New(memory.Config{})
	c, err := pubsub.New(tr, pubsub.WithDrainTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	topic := pubsub.NewTopic[order]("slow")
	started, cancelled := make(chan struct{}), make(chan struct{})
	_ = pubsub.Subscribe(c, topic, "g", func(ctx context.Context, m *pubsub.Message[order]) error {
		close(started)
		<-ctx.Done()
		close(cancelled)
		return ctx.Err()
	})
	ctx, stop := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- c.Run(ctx) }()
	_ = pubsub.Publish(context.Background(), c, topic, order{})
	<-started
	begin := time.Now()
	stop()
	if err := <-runErr; !errors.Is(err, pubsub.ErrDrainTimeout) {
		t.Fatalf("Run: %v, want ErrDrainTimeout", err)
	}
	<-cancelled
	if d := time.Since(begin); d < 100*time.Millisecond || d > 5*time.Second {
		t.Errorf("drain took %s with a 100ms timeout", d)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestHandlerErrorAndPanicDeadLettered: an error or a panic dead-letters the message
// with the reason; the message behind it is handled.
func TestHandlerErrorAndPanicDeadLettered(t *testing.T) {
	h := pubsubtest.New(t)
	topic := pubsub.NewTopic[order]("flaky")
	err := pubsub.Subscribe(h.Client, topic, "g", func(ctx context.Context, m *pubsub.Message[order]) error {
		switch m.Payload.ID {
		case "error":
			return errors.New("card declined")
		case "panic":
			panic("nil map")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"error", "panic", "fine"} {
		if err := pubsub.Publish(context.Background(), h.Client, topic, order{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	h.WaitHandled("flaky", "g", 1)
	dead := h.WaitDeadLettered("flaky", "g", 2)
	reasons := []string{dead[0].Message.Metadata.Get(metadata.DeadLetterReason), dead[1].Message.Metadata.Get(metadata.DeadLetterReason)}
	if reasons[0] != "card declined" || !strings.Contains(reasons[1], "handler panicked: nil map") {
		t.Fatalf("dead-letter reasons %q", reasons)
	}
	if dead[1].Message.Metadata.Get(metadata.DeadLetterOffset) != "1" || dead[1].Message.Metadata.Get(metadata.DeadLetterAttempts) != "1" {
		t.Errorf("dead letter metadata %v lacks offset 1 or attempts 1", dead[1].Message.Metadata)
	}
}

// failingDLQ refuses publishes to dead-letter topics while fail is set.
type failingDLQ struct {
	transport.Transport
	fail atomic.Bool
}

func (f *failingDLQ) Publish(topic string, msgs ...*message.Message) error {
	if strings.HasSuffix(topic, ".dlq") && f.fail.Load() {
		return errors.New("dead-letter topic unavailable")
	}
	return f.Transport.Publish(topic, msgs...)
}

// TestDeadLetterOutageNacks: while the dead-letter publish fails the message is not
// acked; once it works the message is dead-lettered, not lost.
func TestDeadLetterOutageNacks(t *testing.T) {
	mem, _ := memory.New(memory.Config{NackDelay: 10 * time.Millisecond})
	tr := &failingDLQ{Transport: mem}
	tr.fail.Store(true)
	var attempts atomic.Int32
	dead := make(chan pubsub.Event, 1)
	c, err := pubsub.New(tr, pubsub.WithEventHook(func(e pubsub.Event) {
		if e.Kind == pubsub.EventDeadLettered {
			dead <- e
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	topic := pubsub.NewTopic[order]("outage")
	_ = pubsub.Subscribe(c, topic, "g", func(context.Context, *pubsub.Message[order]) error {
		if attempts.Add(1) == 3 {
			tr.fail.Store(false)
		}
		return errors.New("always fails")
	})
	go c.Run(context.Background())
	_ = pubsub.Publish(context.Background(), c, topic, order{ID: "x"})
	select {
	case e := <-dead:
		if e.MessageID == "" || attempts.Load() < 3 {
			t.Fatalf("dead-lettered after %d attempts", attempts.Load())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("not dead-lettered after the outage; %d attempts", attempts.Load())
	}
}

func Example() {
	ctx := context.Background()
	c, err := pubsub.Open(ctx, "memory://")
	if err != nil {
		panic(err)
	}
	defer c.Close()

	greetings := pubsub.NewTopic[string]("greetings")
	done := make(chan struct{})
	_ = pubsub.Subscribe(c, greetings, "printer", func(ctx context.Context, m *pubsub.Message[string]) error {
		fmt.Printf("%s (attempt %d)\n", m.Payload, m.Attempt)
		close(done)
		return nil
	})
	go c.Run(ctx)

	_ = pubsub.Publish(ctx, c, greetings, "hello, pubsub")
	<-done
	// Output: hello, pubsub (attempt 1)
}
