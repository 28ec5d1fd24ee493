package pubsub_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/transport/memory"
)

// traceEvents returns the trace log's lines whose body is the row id, and their events.
func traceEvents(t *testing.T, log *lockedBuffer, id string) []string {
	t.Helper()
	var out []string
	for _, l := range log.lines(t) {
		if body, _ := l["body"].(map[string]any); body["id"] == id {
			out = append(out, l["event"].(string))
		}
	}
	return out
}

// TestBatchHeldLeavesOnDrainUnattempted: Ordered, a message held back behind a
// failed message of its key waiting for its retry leaves on drain as a redelivery,
// never attempted: the trace log shows no failed or retried line for it (the failed
// message has its own).
func TestBatchHeldLeavesOnDrainUnattempted(t *testing.T) {
	tr, err := memory.New(memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	log := &lockedBuffer{}
	c, err := pubsub.New(tr, pubsub.WithTraceLog(slog.NewJSONHandler(log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	topic := pubsub.NewTopic[row]("batch-held-drain")
	h := func(_ context.Context, ms []*pubsub.Message[row]) error {
		for _, m := range ms {
			if m.Payload.ID == "first" {
				return pubsub.Failed(m, errors.New("not yet"))
			}
		}
		return nil
	}
	if err := pubsub.SubscribeBatch(c, topic, "g", h, pubsub.WithBatch(10, 200*time.Millisecond),
		pubsub.WithDelivery(pubsub.Delivery{Retry: 1, BackoffDelay: time.Hour, Ordering: pubsub.Ordered})); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- c.Run(ctx) }()
	<-c.Running()
	for _, id := range []string{"first", "held"} {
		if err := pubsub.Publish(context.Background(), c, topic, row{ID: id}, pubsub.WithMessageKey("k")); err != nil {
			t.Fatal(err)
		}
	}
	// "first" was retried: its batch finished, "held" waits behind it.
	for deadline := time.Now().Add(10 * time.Second); len(traceEvents(t, log, "first")) < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no failed and retried lines for the first message; log: %s", log.String())
		}
	}
	cancel()
	select {
	case err := <-ran:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of the drain")
	}
	for _, ev := range traceEvents(t, log, "held") {
		if ev == "failed" || ev == "retried" {
			t.Errorf("the held message has a %s line; it was never attempted (log: %s)", ev, log.String())
		}
	}
}
