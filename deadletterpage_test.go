package pubsub_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/pubsubkit/pubsub"
)

// TestDeadLetterPages: pages of a given size, newest first, cover every letter once;
// a letter dead-lettered between two pages does not shift the next; AsOf of a page's
// snapshot leaves out letters dead-lettered after it; DeadLetterAt reads one letter
// and refuses one that was resolved.
func TestDeadLetterPages(t *testing.T) {
	h, topic := deadLetterFixture(t)
	ctx := context.Background()
	c := h.Client
	for i := range 25 {
		must(t, pubsub.Publish(ctx, c, topic, payment{ID: fmt.Sprint("k-", i%3), Amount: -i - 1}))
	}
	h.WaitDeadLettered(topic.Name(), "ledger", 25)
	all, err := c.DeadLetters(ctx, topic.Name(), "ledger")
	must(t, err)

	first, err := c.DeadLetterPage(ctx, topic.Name(), "ledger", pubsub.PageQuery{Size: 10})
	must(t, err)
	if len(first.Letters) != 10 || first.Total != 25 || first.Next == "" || first.Letters[0].ID != all[24].ID ||
		len(first.Groups) != 1 || first.Groups[0].Count != 25 {
		t.Fatalf("first page: %d letters, total %d, next %q, groups %+v", len(first.Letters), first.Total, first.Next, first.Groups)
	}
	must(t, pubsub.Publish(ctx, c, topic, payment{ID: "late", Amount: -100}))
	h.WaitDeadLettered(topic.Name(), "ledger", 26)
	seen := map[string]bool{}
	for _, l := range first.Letters {
		seen[l.ID] = true
	}
	for cursor := first.Next; cursor != ""; {
		page, err := c.DeadLetterPage(ctx, topic.Name(), "ledger", pubsub.PageQuery{Size: 10, Cursor: cursor})
		must(t, err)
		for _, l := range page.Letters {
			if seen[l.ID] {
				t.Fatalf("letter %s on two pages", l.ID)
			}
			seen[l.ID] = true
		}
		cursor = page.Next
	}
	if len(seen) != 25 {
		t.Fatalf("the pages after the first held %d letters in all, want 25", len(seen))
	}
	if _, err := c.DeadLetterPage(ctx, topic.Name(), "ledger", pubsub.PageQuery{Cursor: "nope!"}); !errors.Is(err, pubsub.ErrInvalidOption) {
		t.Fatalf("a bad cursor: %v", err)
	}
	if _, err := c.DeadLetterPage(ctx, topic.Name(), "ledger", pubsub.PageQuery{Size: pubsub.MaxPageSize + 1}); !errors.Is(err, pubsub.ErrInvalidOption) {
		t.Fatalf("a page too large: %v", err)
	}

	// Discard key k-1 as the first page showed it: the late letter stays.
	asOf, err := pubsub.AsOf(first.Snapshot)
	must(t, err)
	n, err := c.Discard(ctx, topic.Name(), "ledger", pubsub.ReplayMatching(pubsub.ByKey("k-1"), asOf))
	if err != nil || n != 8 {
		t.Fatalf("Discard as of the first page: %d, %v", n, err)
	}
	n, err = c.Discard(ctx, topic.Name(), "ledger", pubsub.ReplayMatching(asOf))
	if err != nil || n != 17 {
		t.Fatalf("Discard the rest as of the first page: %d, %v", n, err)
	}
	left, err := c.DeadLetters(ctx, topic.Name(), "ledger")
	if err != nil || len(left) != 1 || left[0].Key != "late" {
		t.Fatalf("left after discarding as of the first page: %+v, %v", left, err)
	}
	if _, err := pubsub.AsOf("yesterday"); !errors.Is(err, pubsub.ErrInvalidOption) {
		t.Fatalf("a bad snapshot: %v", err)
	}

	l := left[0]
	if !l.HasLetterPosition {
		t.Fatal("the memory transport gave no position of the letter")
	}
	got, err := c.DeadLetterAt(ctx, topic.Name(), "ledger", l.ID, l.LetterPartition, l.LetterOffset)
	if err != nil || got.ID != l.ID || string(got.Payload) != string(l.Payload) {
		t.Fatalf("DeadLetterAt: %+v, %v", got, err)
	}
	if got, err := c.DeadLetterAt(ctx, topic.Name(), "ledger", l.ID, 0, 0); err != nil || got.ID != l.ID {
		t.Fatalf("DeadLetterAt a wrong position: %+v, %v", got, err)
	}
	_, err = c.DeadLetterAt(ctx, topic.Name(), "ledger", all[0].ID, all[0].LetterPartition, all[0].LetterOffset)
	if !errors.Is(err, pubsub.ErrNoDeadLetter) {
		t.Fatalf("DeadLetterAt a discarded letter: %v", err)
	}
}
