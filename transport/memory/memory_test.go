package memory_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/transport"
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

func subscribe(t *testing.T, tr *memory.Transport, ctx context.Context, topic, group string) <-chan *message.Message {
	t.Helper()
	sub, err := tr.Subscribe(ctx, topic, transport.SubscribeOptions{Group: group})
	if err != nil {
		t.Fatal(err)
	}
	return sub.Messages()
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

// TestFullTopicIsAnErrorNotADrop: messages a group has not consumed are never
// dropped: past the bound Publish fails, and the retained ones all reach the group.
func TestFullTopicIsAnErrorNotADrop(t *testing.T) {
	tr := newTransport(t, memory.Config{MaxRetained: 3, FullTimeout: 50 * time.Millisecond})
	ctx, pause := context.WithCancel(context.Background())
	subscribe(t, tr, ctx, "t", "g")
	pause() // the group exists and has consumed nothing
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
	ch := subscribe(t, tr, context.Background(), "t", "g")
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

// TestTopicNobodyConsumesKeepsItsNewest: a topic with no group (a dead-letter topic
// nobody reads) never stalls its publishers: past the bound its oldest messages go,
// as Kafka's retention drops them, and a group that comes later reads the newest.
func TestTopicNobodyConsumesKeepsItsNewest(t *testing.T) {
	tr := newTransport(t, memory.Config{MaxRetained: 3, FullTimeout: -1})
	if err := publish(t, tr, "dlq", "a", "b", "c", "d", "e"); err != nil {
		t.Fatalf("publish to a topic nobody consumes: %v", err)
	}
	ch := subscribe(t, tr, context.Background(), "dlq", "late")
	for _, want := range []string{"c", "d", "e"} {
		msg := <-ch
		if msg.UUID != want {
			t.Fatalf("got %s, want %s (the newest 3)", msg.UUID, want)
		}
		msg.Ack()
	}
}

// TestTransportWideBound: all topics together hold at most MaxBytes; a full
// transport makes room by dropping messages that every group finished, in any topic,
// and otherwise refuses.
func TestTransportWideBound(t *testing.T) {
	tr := newTransport(t, memory.Config{MaxBytes: 10 << 10, MaxRetainedBytes: 10 << 10, FullTimeout: 20 * time.Millisecond})
	big := func(id string) *message.Message { return message.NewMessage(id, make([]byte, 3<<10)) }
	for _, id := range []string{"1", "2"} {
		if err := tr.Publish("a", big(id)); err != nil {
			t.Fatal(err)
		}
	}
	hold := subscribe(t, tr, context.Background(), "b", "g") // b's messages must stay
	if err := tr.Publish("b", big("3")); err != nil {
		t.Fatalf("third 3 KiB message under a 10 KiB bound: %v", err)
	}
	// 9 KiB held; one more must drop one of a's (nobody consumes a).
	if err := tr.Publish("b", big("4")); err != nil {
		t.Fatalf("publish that needs room from another topic: %v", err)
	}
	msgs, _ := tr.ReadAll(context.Background(), "a")
	if len(msgs) != 1 || msgs[0].UUID != "2" {
		t.Fatalf("topic a holds %d messages, want 1 (the newer)", len(msgs))
	}
	if err := tr.Publish("b", big("5")); err != nil {
		t.Fatal(err)
	}
	// a is empty; b's three are not consumed: the transport is full.
	if err := tr.Publish("b", big("6")); !errors.Is(err, memory.ErrTopicFull) {
		t.Fatalf("publish past the transport's bound with nothing to drop: %v, want ErrTopicFull", err)
	}
	(<-hold).Ack()
	deadline := time.Now().Add(5 * time.Second)
	for tr.Publish("b", big("6")) != nil {
		if time.Now().After(deadline) {
			t.Fatal("no room after the group consumed a message")
		}
	}
}

// TestStandbyMemberTakesOver: one member of a group consumes; a second stands by and
// takes over from the group's position when the first leaves.
func TestStandbyMemberTakesOver(t *testing.T) {
	tr := newTransport(t, memory.Config{})
	ctx, leave := context.WithCancel(context.Background())
	first := subscribe(t, tr, ctx, "t", "g")
	second := subscribe(t, tr, context.Background(), "t", "g")
	if err := publish(t, tr, "t", "1", "2"); err != nil {
		t.Fatal(err)
	}
	m := <-first
	if m.UUID != "1" {
		t.Fatalf("first member got %s", m.UUID)
	}
	m.Ack()
	select {
	case m := <-second:
		t.Fatalf("the standby member got %s while the first consumes", m.UUID)
	case <-time.After(20 * time.Millisecond):
	}
	leave()
	for range first {
	}
	select {
	case m := <-second:
		if m.UUID != "2" {
			t.Fatalf("after the first left, the standby got %s, want 2", m.UUID)
		}
		m.Ack()
	case <-time.After(5 * time.Second):
		t.Fatal("the standby member did not take over")
	}
}

// TestFullTopicWaitsForConsumer: a publisher blocked on a full topic goes on once the
// slow group acks.
func TestFullTopicWaitsForConsumer(t *testing.T) {
	tr := newTransport(t, memory.Config{MaxRetained: 2, FullTimeout: 5 * time.Second})
	ch := subscribe(t, tr, context.Background(), "t", "slow")
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
	subscribe(t, tr, ctx, "t", "gone")
	fast := subscribe(t, tr, context.Background(), "t", "fast")
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
