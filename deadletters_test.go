package pubsub_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/codec"
	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/pubsubtest"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/memory"
)

type payment struct {
	ID     string `json:"id"`
	Amount int    `json:"amount"`
}

// deadLetterFixture is a client whose "ledger" group dead-letters every payment with
// an amount over 100 and, at once, those with a negative one.
func deadLetterFixture(t *testing.T) (*pubsubtest.Harness, pubsub.Topic[payment]) {
	h := pubsubtest.New(t)
	topic := pubsub.NewTopic[payment]("payments", pubsub.WithKey(func(p payment) string { return p.ID }))
	must(t, pubsub.Subscribe(h.Client, topic, "ledger", func(_ context.Context, m *pubsub.Message[payment]) error {
		switch {
		case m.Payload.Amount < 0:
			return pubsub.Permanent(fmt.Errorf("payment %s has a negative amount", m.Payload.ID))
		case m.Payload.Amount > 100:
			return fmt.Errorf("account %d is over its limit", m.Payload.Amount*7)
		}
		return nil
	}))
	return h, topic
}

// TestDeadLetterTopicHoldsDeadLettersOnly: a plain subscription to a dead-letter topic
// sees every dead letter with its dead-letter keys in Message.Metadata, and nothing
// else: replays and discards are recorded elsewhere. A dead letter dead-lettered again
// keeps its first reason and origin.
func TestDeadLetterTopicHoldsDeadLettersOnly(t *testing.T) {
	h, topic := deadLetterFixture(t)
	dlq := pubsub.NewTopic[payment](pubsub.DeadLetterTopicName(topic.Name(), "ledger"))
	seen := make(chan *pubsub.Message[payment], 10)
	must(t, pubsub.Subscribe(h.Client, dlq, "alerts", func(_ context.Context, m *pubsub.Message[payment]) error {
		seen <- m
		return errors.New("alerting is down") // dead-letters the dead letter
	}))
	ctx := context.Background()
	must(t, pubsub.Publish(ctx, h.Client, topic, payment{ID: "p-1", Amount: 500}))
	must(t, pubsub.Publish(ctx, h.Client, topic, payment{ID: "p-2", Amount: -1}))
	h.WaitDeadLettered(topic.Name(), "ledger", 2)
	for range 2 {
		select {
		case m := <-seen:
			md := m.Metadata
			if md[metadata.DeadLetterTopic] != topic.Name() || md[metadata.DeadLetterGroup] != "ledger" ||
				md[metadata.DeadLetterReason] == "" || md[metadata.DeadLetterAttempts] != "1" || md[metadata.DeadLetterOffset] == "" {
				t.Errorf("a dead letter's metadata as its consumer sees it: %v", md)
			}
			if (m.Payload.ID == "p-2") != (md[metadata.DeadLetterPermanent] == "true") {
				t.Errorf("%s: permanent %q", m.Payload.ID, md[metadata.DeadLetterPermanent])
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the dead-letter topic's consumer did not get the dead letters")
		}
	}
	// Replays and discards write nothing to the dead-letter topic.
	if _, err := h.Client.Discard(ctx, topic.Name(), "ledger", pubsub.ReplayAll().Note("ops", "test")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-seen:
		t.Fatalf("the dead-letter topic's consumer got %v after a discard", m.Metadata)
	case <-time.After(200 * time.Millisecond):
	}
	// The dead letters' own dead letters keep the first reason and origin.
	again := h.WaitDeadLettered(dlq.Name(), "alerts", 2)
	for _, e := range again {
		md := e.Message.Metadata
		if md[metadata.DeadLetterOriginPrefix+"topic"] != topic.Name() || md[metadata.DeadLetterOriginPrefix+"group"] != "ledger" ||
			!strings.Contains(md[metadata.DeadLetterOriginPrefix+"reason"], "p-2") && !strings.Contains(md[metadata.DeadLetterOriginPrefix+"reason"], "limit") ||
			md[metadata.DeadLetterReason] != "alerting is down" {
			t.Errorf("a dead letter dead-lettered again: %v", md)
		}
	}
}

// TestQueryAndResolveDeadLetters: filters, groups of masked reasons, discard with who
// and why, replay of a group and of one edited letter, and an unknown subscription.
func TestQueryAndResolveDeadLetters(t *testing.T) {
	h, topic := deadLetterFixture(t)
	ctx := context.Background()
	for i, amount := range []int{150, 200, -5, 300} {
		must(t, pubsub.Publish(ctx, h.Client, topic, payment{ID: fmt.Sprint("p-", i), Amount: amount}, pubsub.WithCorrelationID(fmt.Sprint("cid-", i))))
	}
	h.WaitDeadLettered(topic.Name(), "ledger", 4)
	c := h.Client
	all, err := c.DeadLetters(ctx, topic.Name(), "ledger")
	if err != nil || len(all) != 4 {
		t.Fatalf("DeadLetters: %d, %v", len(all), err)
	}
	if got, _ := c.DeadLetters(ctx, topic.Name(), "ledger", pubsub.ByReason("LIMIT")); len(got) != 3 {
		t.Errorf("ByReason(limit): %d letters, want 3", len(got))
	}
	if got, _ := c.DeadLetters(ctx, topic.Name(), "ledger", pubsub.ByKey("p-2")); len(got) != 1 || !got[0].Permanent {
		t.Errorf("ByKey(p-2): %+v", got)
	}
	if got, _ := c.DeadLetters(ctx, topic.Name(), "ledger", pubsub.ByCorrelationID("cid-3")); len(got) != 1 || got[0].Key != "p-3" {
		t.Errorf("ByCorrelationID(cid-3): %+v", got)
	}
	if got, _ := c.DeadLetters(ctx, topic.Name(), "ledger", pubsub.Since(all[1].LastFailure), pubsub.Until(all[3].LastFailure)); len(got) != 2 {
		t.Errorf("Since/Until: %d letters, want 2", len(got))
	}
	groups, err := c.DeadLetterGroups(ctx, topic.Name(), "ledger")
	if err != nil || len(groups) != 2 || groups[0].Count != 3 || groups[0].Reason != "account <n> is over its limit" || groups[1].Count != 1 {
		t.Fatalf("DeadLetterGroups: %+v, %v", groups, err)
	}

	// Discard the permanent one, with who and why.
	if n, err := c.Discard(ctx, topic.Name(), "ledger", pubsub.ReplayIDs(all[2].ID).Note("ada", "test payment")); err != nil || n != 1 {
		t.Fatalf("Discard: %d, %v", n, err)
	}
	resolved, err := c.Resolved(ctx, topic.Name(), "ledger")
	if err != nil || len(resolved) != 1 || resolved[0].Replayed || resolved[0].By != "ada" || resolved[0].Note != "test payment" || resolved[0].At.IsZero() {
		t.Fatalf("Resolved: %+v, %v", resolved, err)
	}

	// An edited payload must decode as the subscription's type.
	bad := pubsub.ReplayIDs(all[0].ID).WithPayload([]byte(`{"id": 7}`))
	if _, err := c.Replay(ctx, topic.Name(), "ledger", bad); !errors.Is(err, pubsub.ErrInvalidOption) {
		t.Fatalf("Replay with a payload the type cannot take: %v, want ErrInvalidOption", err)
	}
	fixed := pubsub.ReplayIDs(all[0].ID).WithPayload([]byte(`{"id":"p-0","amount":15}`)).Note("ada", "lowered the amount")
	if n, err := c.Replay(ctx, topic.Name(), "ledger", fixed); err != nil || n != 1 {
		t.Fatalf("Replay edited: %d, %v", n, err)
	}
	h.WaitHandled(topic.Name(), "ledger", 1)

	// Replay the rest of the group: they fail again and come back as new letters.
	group := groups[0].Reason
	if n, err := c.Replay(ctx, topic.Name(), "ledger", pubsub.ReplayMatching(pubsub.ByReasonGroup(group))); err != nil || n != 2 {
		t.Fatalf("Replay of the group: %d, %v", n, err)
	}
	h.WaitDeadLettered(topic.Name(), "ledger", 6)
	left, err := c.DeadLetters(ctx, topic.Name(), "ledger")
	if err != nil || len(left) != 2 {
		t.Fatalf("after the replays %d letters pending, want the 2 that failed again: %v", len(left), err)
	}

	if _, err := c.DeadLetters(ctx, topic.Name(), "ledgr"); !errors.Is(err, pubsub.ErrUnknownSubscription) {
		t.Fatalf("DeadLetters of a misspelt group: %v, want ErrUnknownSubscription", err)
	}
}

// TestForgedBookkeepingIgnored: a producer outside pubsubkit that forges the keys a
// subscription writes on its own topics gets nothing for it: an attempt of 99 on the
// topic still gets every retry, and a replay mark does not hide a dead letter.
func TestForgedBookkeepingIgnored(t *testing.T) {
	tr, err := memory.New(memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	h := pubsubtest.NewOn(t, tr)
	topic := pubsub.NewTopic[payment]("forged")
	attempts := make(chan int, 10)
	must(t, pubsub.Subscribe(h.Client, topic, "g", func(_ context.Context, m *pubsub.Message[payment]) error {
		attempts <- m.Attempt
		return errors.New("fails")
	}, pubsub.WithDelivery(pubsub.Delivery{Retry: 2, BackoffDelay: time.Millisecond})))
	forged := message.NewMessage("forged-1", []byte(`{"id":"x","amount":1}`))
	forged.Metadata.Set(metadata.Attempt, "99")
	forged.Metadata.Set(metadata.Replayed, "true")
	forged.Metadata.Set(metadata.RetryDue, metadata.FormatTime(time.Now().Add(7*24*time.Hour)))
	if err := tr.Publish(topic.Name(), forged); err != nil {
		t.Fatal(err)
	}
	h.WaitDeadLettered(topic.Name(), "g", 1)
	for want := 1; want <= 3; want++ {
		if got := <-attempts; got != want {
			t.Fatalf("attempt %d seen as %d: a forged attempt counted", want, got)
		}
	}
	letters, err := h.Client.DeadLetters(context.Background(), topic.Name(), "g")
	if err != nil || len(letters) != 1 || letters[0].Attempts != 3 {
		t.Fatalf("dead letters %+v, %v: want the forged record's, after 3 attempts", letters, err)
	}
}

// TestRetryTopicsDrainedAfterPolicyChange: messages waiting in retry topics when a
// subscription's Delivery changes (fewer retries, or Ordered instead of Unordered) are
// still delivered to it, and dead-lettered if they fail again, never stranded.
func TestRetryTopicsDrainedAfterPolicyChange(t *testing.T) {
	for _, later := range []pubsub.Delivery{
		{Retry: 1, Ordering: pubsub.Unordered}, // fewer retries: retry.3 is no longer one of its topics
		{Retry: 1},                             // Ordered: no retry topic at all
	} {
		t.Run(later.Ordering.String(), func(t *testing.T) {
			tr, err := memory.New(memory.Config{})
			if err != nil {
				t.Fatal(err)
			}
			topic := pubsub.NewTopic[payment]("drain." + later.Ordering.String())
			// A message left in retry topic 3 by the earlier policy (Retry 3, Unordered).
			waiting := message.NewMessage("left-1", []byte(`{"id":"left","amount":1}`))
			waiting.Metadata.Set(metadata.Attempt, "4")
			waiting.Metadata.Set(metadata.RetryDue, metadata.FormatTime(time.Now()))
			if err := tr.Publish(pubsub.RetryTopicName(topic.Name(), "g", 3), waiting); err != nil {
				t.Fatal(err)
			}
			h := pubsubtest.NewOn(t, tr)
			got := make(chan int, 4)
			must(t, pubsub.Subscribe(h.Client, topic, "g", func(_ context.Context, m *pubsub.Message[payment]) error {
				got <- m.Attempt
				return errors.New("still failing")
			}, pubsub.WithDelivery(later)))
			select {
			case attempt := <-got:
				if attempt != 4 {
					t.Errorf("the waiting message came at attempt %d, want 4", attempt)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the message waiting in an old retry topic was stranded")
			}
			dead := h.WaitDeadLettered(topic.Name(), "g", 1)
			if dead[0].MessageID != "left-1" {
				t.Fatalf("dead-lettered %s", dead[0].MessageID)
			}
		})
	}
}

// TestDeadLetterAtTheSizeLimit: the largest message the transport accepts, whose
// handler fails with a long reason, is dead-lettered whole on Kafka and on memory:
// the limits leave room for the dead-letter keys.
func TestDeadLetterAtTheSizeLimit(t *testing.T) {
	const limit = 64 << 10
	for name, url := range map[string]func(t *testing.T) string{
		"memory": func(*testing.T) string { return fmt.Sprintf("memory://?max_retained_bytes=%d", limit) },
		"kafka":  func(t *testing.T) string { return kafkatest.New(t).URL(fmt.Sprintf("max_message_bytes=%d", limit)) },
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			tr, err := pubsub.Transports().Open(ctx, url(t), transport.OpenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			h := pubsubtest.NewOn(t, tr)
			topic := pubsub.NewTopic[[]byte](kafkatest.Topic("big"), pubsub.WithCodec(codec.Raw))
			must(t, pubsub.Subscribe(h.Client, topic, "g", func(context.Context, *pubsub.Message[[]byte]) error {
				return pubsub.Permanent(errors.New(strings.Repeat("the reason is long. ", 1000)))
			}))
			// Find the largest payload the transport takes: what it refuses is refused
			// as too large.
			lo, hi, published := limit-8192, limit, 0 // lo is accepted, hi+1 is not
			must(t, pubsub.Publish(ctx, h.Client, topic, make([]byte, lo)))
			published++
			for lo < hi {
				mid := (lo + hi + 1) / 2
				switch err := pubsub.Publish(ctx, h.Client, topic, make([]byte, mid)); {
				case err == nil:
					lo, published = mid, published+1
				case errors.Is(err, transport.ErrMessageTooLarge):
					hi = mid - 1
				default:
					t.Fatal(err)
				}
			}
			dead := h.WaitDeadLettered(topic.Name(), "g", published)
			largest := 0
			for _, e := range dead {
				d := e.Message
				if d.Metadata.Get(metadata.DeadLetterPayloadDropped) != "" || len(d.Metadata.Get(metadata.DeadLetterReason)) > metadata.MaxReasonBytes {
					t.Errorf("dead letter of %d bytes: payload dropped %q, reason of %d bytes", len(d.Payload),
						d.Metadata.Get(metadata.DeadLetterPayloadDropped), len(d.Metadata.Get(metadata.DeadLetterReason)))
				}
				largest = max(largest, len(d.Payload))
			}
			if largest != lo {
				t.Errorf("the largest message accepted has %d bytes, the largest dead letter %d", lo, largest)
			}
			t.Logf("largest accepted payload %d bytes of a %d byte limit; %d dead letters", lo, limit, len(dead))
		})
	}
}

// TestDeadLettersTenThousandOnKafka: DeadLetters of a subscription with 10,000
// pending letters on Kafka reads them all, in time linear in their number. Measured on
// a quiet two-core machine: 120 ms, 633 ms under the race detector; with four copies
// at once beside two CPU burners (load 19 on two cores), the fastest of three calls
// took up to 4.9 s. The bound fails only a regression of over ten times (a quadratic
// scan would be far over it), and the test takes the fastest of three calls, so that
// a loaded machine slowing one call does not fail it.
func TestDeadLettersTenThousandOnKafka(t *testing.T) {
	const n = 10_000
	ctx := context.Background()
	tr, err := pubsub.Transports().Open(ctx, kafkatest.New(t).URL(""), transport.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h := pubsubtest.NewOn(t, tr)
	h.Timeout = 2 * time.Minute
	topic := pubsub.NewTopic[payment](kafkatest.Topic("payments"), pubsub.WithKey(func(p payment) string { return p.ID }))
	must(t, pubsub.Subscribe(h.Client, topic, "ledger", func(_ context.Context, m *pubsub.Message[payment]) error {
		return pubsub.Permanent(fmt.Errorf("payment %s of %d is refused by the bank", m.Payload.ID, m.Payload.Amount))
	}, pubsub.WithDelivery(pubsub.Delivery{Concurrency: 16, Ordering: pubsub.Unordered})))
	batch := make([]payment, n)
	for i := range batch {
		batch[i] = payment{ID: fmt.Sprintf("p-%d", i), Amount: 100 + i}
	}
	must(t, pubsub.PublishBatch(ctx, h.Client, topic, batch))
	h.WaitDeadLettered(topic.Name(), "ledger", n)
	bound := 2 * time.Second
	if raceEnabled {
		bound = 10 * time.Second
	}
	fastest := time.Duration(1<<63 - 1)
	for range 3 {
		start := time.Now()
		letters, err := h.Client.DeadLetters(ctx, topic.Name(), "ledger")
		took := time.Since(start)
		if err != nil || len(letters) != n {
			t.Fatalf("DeadLetters: %d letters, %v", len(letters), err)
		}
		fastest = min(fastest, took)
	}
	t.Logf("DeadLetters of %d letters: fastest of 3 calls %v (race detector: %v)", n, fastest, raceEnabled)
	if fastest > bound {
		t.Errorf("DeadLetters of %d letters took %v at best, over %v (over ten times the time on a quiet machine)", n, fastest, bound)
	}
}
