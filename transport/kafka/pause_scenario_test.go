package kafka_test

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

// handleSlowly runs a 20 ms handler per delivered message of sub, as a router does,
// counting each into seen and handled.
func handleSlowly(sub transport.Subscription, seen *tally, handled *atomic.Int64) {
	go func() {
		for m := range sub.Messages() {
			go func() {
				time.Sleep(20 * time.Millisecond) // the handler's work
				seen.add(string(m.Payload))
				handled.Add(1)
				m.Ack()
			}()
		}
	}()
}

// settled reports whether no message of sub is in a handler.
func settled(sub transport.Subscription) bool {
	for _, p := range sub.Stats() {
		if p.InFlight > 0 {
			return false
		}
	}
	return true
}

// TestPauseResumeNeverStallsAPartition is the audit's repro: 6 partitions, prefetch 16,
// fetch_bytes 2048, Concurrency 8, a 20 ms handler. While 6,000 messages are handled
// the subscription is paused again and again, each time until its handlers have
// finished (so lanes that were full drain while paused), and resumed. Then 6,000 more
// are published while a second member joins the group and both members are paused
// and resumed without a break through the rebalance. Every message is handled.
func TestPauseResumeNeverStallsAPartition(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.New(t)
	topic := kafkatest.Topic("pause-resume")
	cfg := kafka.Config{Partitions: 6, Prefetch: 16, FetchBytes: 2048, CommitInterval: 200 * time.Millisecond}
	a := newTransport(t, cluster, cfg)
	const n = 6000
	first := keyed(n, func(i int) string { return "k" + strconv.Itoa(i%60) })
	if err := a.Publish(topic, first...); err != nil {
		t.Fatal(err)
	}
	seen := newTally()
	var handled atomic.Int64
	opts := transport.SubscribeOptions{Group: "g", Concurrency: 8}
	subA := subscribe(t, a, topic, opts)
	handleSlowly(subA, seen, &handled)

	// Phase 1: pause every 400 handled messages until the handlers are idle, resume.
	pauses := 0
	for next := int64(400); next < n-400; next += 400 {
		if !waitFor(60*time.Second, func() bool { return handled.Load() >= next }) {
			lost, _ := seen.lostAndDuplicated(n)
			t.Fatalf("phase 1 stalled after %d pauses: %d of %d messages never handled; partitions: %+v", pauses, lost, n, subA.Stats())
		}
		subA.Pause()
		pauses++
		if !waitFor(30*time.Second, func() bool { return settled(subA) }) {
			t.Fatalf("handlers still busy 30s after Pause: %+v", subA.Stats())
		}
		subA.Resume()
	}
	if !waitFor(60*time.Second, func() bool { return seen.distinct() >= n }) {
		lost, _ := seen.lostAndDuplicated(n)
		t.Fatalf("after %d pauses %d of %d messages were never handled; partitions: %+v", pauses, lost, n, subA.Stats())
	}

	// Phase 2: 6,000 more while a second member joins and both are paused and resumed
	// without a break.
	second := keyed(2*n, func(i int) string { return "k" + strconv.Itoa(i%60) })[n:]
	if err := a.Publish(topic, second...); err != nil {
		t.Fatal(err)
	}
	b := newTransport(t, cluster, cfg)
	subB := subscribe(t, b, topic, opts)
	handleSlowly(subB, seen, &handled)
	stop := make(chan struct{})
	var spam sync.WaitGroup
	var spammed atomic.Int64
	for _, sub := range []transport.Subscription{subA, subB} {
		spam.Go(func() {
			for {
				select {
				case <-stop:
					sub.Resume()
					return
				default:
				}
				sub.Pause()
				time.Sleep(time.Millisecond) // paused long enough for a lane to fill or drain
				sub.Resume()
				time.Sleep(time.Millisecond)
				spammed.Add(1)
			}
		})
	}
	// Spam until the rebalance has given B partitions and B has handled messages, and
	// half the second batch is through.
	rebalanced := waitFor(60*time.Second, func() bool {
		return len(subB.Stats()) > 0 && len(subA.Stats()) < 6 && seen.distinct() >= n+n/2
	})
	close(stop)
	spam.Wait()
	if !rebalanced {
		t.Fatalf("no rebalance within 60s while paused and resumed: A owns %d partitions, B %d, %d of %d handled",
			len(subA.Stats()), len(subB.Stats()), seen.distinct(), 2*n)
	}
	if !waitFor(60*time.Second, func() bool { return seen.distinct() >= 2*n }) {
		lost, _ := seen.lostAndDuplicated(2 * n)
		t.Fatalf("%d of %d messages were never handled after %d pause/resume pairs during a rebalance; A: %+v B: %+v",
			lost, 2*n, spammed.Load(), subA.Stats(), subB.Stats())
	}
	lost, dup := seen.lostAndDuplicated(2 * n)
	if lost > 0 {
		t.Fatalf("%d messages lost", lost)
	}
	t.Logf("%d pauses, then %d pause/resume pairs during a rebalance; 0 lost, %d handled twice", pauses, spammed.Load(), dup)
}
