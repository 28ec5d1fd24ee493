package memory_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/transport/memory"
)

func newTransport(t *testing.T, cfg memory.Config) *memory.Transport {
	t.Helper()
	tr, err := memory.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

func publish(t *testing.T, tr *memory.Transport, topic string, ids ...string) error {
	t.Helper()
	for _, id := range ids {
		if err := tr.Publish(topic, message.NewMessage(id, []byte(id))); err != nil {
			return err
		}
	}
	return nil
}

// TestFullTopicIsAnErrorNotADrop: with no group to consume them, messages past the
// bound are refused, and the retained ones all reach the first group.
func TestFullTopicIsAnErrorNotADrop(t *testing.T) {
	tr := newTransport(t, memory.Config{MaxRetained: 3, FullTimeout: 50 * time.Millisecond})
	if err := publish(t, tr, "t", "a", "b", "c"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := publish(t, tr, "t", "d")
	if !errors.Is(err, memory.ErrTopicFull) {
		t.Fatalf("publish past the bound: %v, want ErrTopicFull", err)
	}
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Errorf("gave up after %s, before FullTimeout", waited)
	}
	ch, _ := tr.SubscribeGroup(context.Background(), "t", "g")
	for _, want := range []string{"a", "b", "c"} {
		msg := <-ch
		if msg.UUID != want {
			t.Fatalf("got %s, want %s", msg.UUID, want)
		}
		msg.Ack()
	}
	// Consumed messages make room again.
	if err := publish(t, tr, "t", "d", "e", "f"); err != nil {
		t.Fatalf("publish after the group consumed: %v", err)
	}
}

// TestFullTopicWaitsForConsumer: a publisher blocked on a full topic goes on once the
// slow group acks.
func TestFullTopicWaitsForConsumer(t *testing.T) {
	tr := newTransport(t, memory.Config{MaxRetained: 2, FullTimeout: 5 * time.Second})
	ch, _ := tr.SubscribeGroup(context.Background(), "t", "slow")
	if err := publish(t, tr, "t", "1", "2"); err != nil {
		t.Fatal(err)
	}
	published := make(chan error, 1)
	go func() { published <- publish(t, tr, "t", "3") }()
	select {
	case err := <-published:
		t.Fatalf("publish to a full topic returned %v before the group consumed", err)
	case <-time.After(50 * time.Millisecond):
	}
	(<-ch).Ack()
	if err := <-published; err != nil {
		t.Fatalf("publish after an ack made room: %v", err)
	}
}

func TestMessageLargerThanTopicRefused(t *testing.T) {
	tr := newTransport(t, memory.Config{MaxRetainedBytes: 1024})
	err := tr.Publish("t", message.NewMessage("big", make([]byte, 2048)))
	if !errors.Is(err, memory.ErrTopicFull) {
		t.Fatalf("2 KiB message with a 1 KiB bound: %v", err)
	}
}

// TestDeleteGroupReleasesRetention: a group that left for good holds messages back
// until it is deleted.
func TestDeleteGroupReleasesRetention(t *testing.T) {
	tr := newTransport(t, memory.Config{MaxRetained: 2, FullTimeout: -1})
	ctx, leave := context.WithCancel(context.Background())
	if _, err := tr.SubscribeGroup(ctx, "t", "gone"); err != nil {
		t.Fatal(err)
	}
	fast, _ := tr.SubscribeGroup(context.Background(), "t", "fast")
	if err := tr.DeleteGroup("t", "gone"); err == nil {
		t.Fatal("DeleteGroup of a group with members succeeded")
	}
	leave()
	for i := range 2 {
		if err := publish(t, tr, "t", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
		(<-fast).Ack()
	}
	if err := publish(t, tr, "t", "x"); !errors.Is(err, memory.ErrTopicFull) {
		t.Fatalf("publish while group gone is behind: %v, want ErrTopicFull", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for tr.DeleteGroup("t", "gone") != nil {
		if time.Now().After(deadline) {
			t.Fatal("group still has members 5s after its subscription ended")
		}
		time.Sleep(time.Millisecond)
	}
	if err := publish(t, tr, "t", "x"); err != nil {
		t.Fatalf("publish after DeleteGroup: %v", err)
	}
}
