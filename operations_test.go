package pubsub_test

import (
	"context"
	"strings"
	"testing"

	"github.com/pubsubkit/pubsub"
)

// TestOnProgressAndHistoryEnabled: OnProgress hears every letter a replay resolves,
// in order; HistoryEnabled follows WithEventHistory; an unknown subscription's error
// names the package once.
func TestOnProgressAndHistoryEnabled(t *testing.T) {
	h, topic := deadLetterFixture(t)
	ctx := context.Background()
	for i, amount := range []int{500, 600, 700} {
		must(t, pubsub.Publish(ctx, h.Client, topic, payment{ID: "p-" + string(rune('a'+i)), Amount: amount}))
	}
	h.WaitDeadLettered(topic.Name(), "ledger", 3)
	var calls [][2]int
	n, err := h.Client.Discard(ctx, topic.Name(), "ledger", pubsub.ReplayAll().OnProgress(func(done, total int) {
		calls = append(calls, [2]int{done, total})
	}))
	if err != nil || n != 3 || len(calls) != 3 || calls[0] != [2]int{1, 3} || calls[2] != [2]int{3, 3} {
		t.Fatalf("Discard: %d, %v; progress %v", n, err, calls)
	}
	if h.Client.HistoryEnabled() {
		t.Fatal("HistoryEnabled without WithEventHistory")
	}
	c, err := pubsub.Open(ctx, "memory://", pubsub.WithEventHistory(10))
	must(t, err)
	defer c.Close()
	if c.URL() != "memory://" || h.Client.URL() != "" && h.Client.URL() != "memory://" {
		t.Fatalf("URL: %q, %q", c.URL(), h.Client.URL())
	}
	if !c.HistoryEnabled() {
		t.Fatal("HistoryEnabled is false with WithEventHistory")
	}
	_, err = c.DeadLetters(ctx, "orders", "nobody")
	if err == nil || strings.Count(err.Error(), "pubsub:") != 1 {
		t.Fatalf("unknown subscription: %v", err)
	}
}
