package middleware_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/middleware"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/memory"
	"github.com/pubsubkit/pubsub/transport/watermilladapter"
)

// TestOnPlainWatermillRouter: the middleware work on a Watermill router that knows
// nothing of pubsubkit: a panic is dead-lettered with its stack, the correlation id is
// set, and the message behind the bad one is handled.
func TestOnPlainWatermillRouter(t *testing.T) {
	tr, err := memory.New(memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	deadLetter, err := middleware.DeadLetter(middleware.DeadLetterConfig{Publisher: tr, Topic: "jobs.dlq", Group: "workers"})
	if err != nil {
		t.Fatal(err)
	}
	router, _ := message.NewRouter(message.RouterConfig{}, nil)
	router.AddMiddleware(middleware.CorrelationID, deadLetter, middleware.Recover)
	handled := make(chan string, 2)
	router.AddConsumerHandler("jobs", "jobs", watermilladapter.NewSubscriber(tr, transport.SubscribeOptions{Group: "workers"}), func(msg *message.Message) error {
		if string(msg.Payload) == "bad" {
			panic("boom")
		}
		handled <- middleware.CorrelationIDFromContext(msg.Context())
		return nil
	})
	go router.Run(context.Background())
	defer router.Close()
	<-router.Running()
	deadSub, _ := tr.Subscribe(context.Background(), "jobs.dlq", transport.SubscribeOptions{Group: "ops"})
	dead := deadSub.Messages()

	_ = tr.Publish("jobs", message.NewMessage("1", []byte("bad")), message.NewMessage("2", []byte("good")))
	select {
	case cid := <-handled:
		if cid == "" {
			t.Error("handler saw no correlation id")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("message behind the panicking one was not handled")
	}
	select {
	case d := <-dead:
		reason := d.Metadata.Get(metadata.DeadLetterReason)
		if string(d.Payload) != "bad" || !strings.Contains(reason, "handler panicked: boom") || !strings.Contains(reason, "goroutine") {
			t.Errorf("dead letter %q with reason %q", d.Payload, reason)
		}
		if d.Metadata.Get(metadata.DeadLetterTopic) != "jobs" || d.Metadata.Get(metadata.CorrelationID) == "" {
			t.Errorf("dead letter metadata %v lacks source topic or correlation id", d.Metadata)
		}
		d.Ack()
	case <-time.After(5 * time.Second):
		t.Fatal("no dead letter")
	}
}

func TestDeadLetterConfigRequired(t *testing.T) {
	if _, err := middleware.DeadLetter(middleware.DeadLetterConfig{Topic: "x"}); !errors.Is(err, transport.ErrInvalidOption) {
		t.Fatalf("no publisher: %v", err)
	}
}

func TestCut(t *testing.T) {
	long := strings.Repeat("é", metadata.MaxReasonBytes) // 2 bytes each
	got := metadata.Cut(long, metadata.MaxReasonBytes-len("…"))
	if len(got) > metadata.MaxReasonBytes || !strings.HasSuffix(got, "…") || !strings.HasPrefix(got, "éé") {
		t.Fatalf("cut to %d bytes, suffix %q", len(got), got[len(got)-4:])
	}
	if strings.ContainsRune(got, '\uFFFD') {
		t.Fatal("cut inside a UTF-8 sequence")
	}
	if metadata.Cut("short", 10) != "short" {
		t.Fatal("short text changed")
	}
}

func TestPermanent(t *testing.T) {
	base := errors.New("bad input")
	err := middleware.Permanent(base)
	if !middleware.IsPermanent(err) || !errors.Is(err, base) || middleware.IsPermanent(base) {
		t.Fatal("Permanent does not mark, or does not wrap")
	}
	if middleware.IsPermanent(errors.Join(errors.New("x"), err)) != true {
		t.Fatal("a wrapped permanent error is not seen")
	}
	if middleware.Permanent(nil) != nil {
		t.Fatal("Permanent(nil) is not nil")
	}
}
