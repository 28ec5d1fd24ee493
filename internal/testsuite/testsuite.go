// Package testsuite is the conformance suite every transport runs from one short test:
//
//	func TestConformance(t *testing.T) {
//		testsuite.Run(t, testsuite.Harness{New: func(t *testing.T) transport.Transport { ... }})
//	}
//
// Each rule is a subtest named after it, so a failure names the broken rule. Rules that
// need a capability the transport does not declare are skipped with the reason.
//
// # Timing rules
//
// These rules hold for every test of the module, not only this suite's: a test fails on
// a real defect only, also on a loaded two-core machine (a laptop compiling, CI with
// `go test` running two packages at once under -race, where a 50 ms timer was seen to
// fire 270 ms late).
//
//   - A backoff is checked from below exactly (a retry never comes early) and from above
//     generously: at most the delay plus max(1 s, 100% of the delay). Or it is checked
//     against the due time the retry stage itself recorded, not the wall clock.
//   - A wait for something that should happen ("within N seconds") uses a deadline of at
//     least ten times the time it takes on a quiet machine, and returns as soon as the
//     event comes; Harness.Timeout (15 s by default) is such a deadline.
//   - Performance is measured in benchmarks (internal/bench, go test -bench). A test may
//     bound a duration only to catch a regression of ten times or more.
//   - No test depends on the order in which goroutines are scheduled: when workers hand
//     out messages concurrently, the test takes them in whatever order they come. Tests
//     wait on events (a channel, a condition polled until a deadline), never on a fixed
//     sleep standing in for an event. A short sleep may give a wrong outcome the chance
//     to show (nothing delivered while paused), never decide a passing one.
package testsuite

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pubsubkit/pubsub"

	"github.com/pubsubkit/pubsub/transport"
)

// Harness tells the suite how to make the transport under test.
type Harness struct {
	// New returns a fresh transport for one rule. The suite closes it. Required.
	New func(t *testing.T) transport.Transport
	// Timeout bounds every wait for a message; 0 means 15 seconds.
	Timeout time.Duration
	// Partitions is how many partitions the transport gives a topic; 0 means 1. The
	// concurrency rules bound the handlers at once by it.
	Partitions int
	// IgnoreGoroutines lists goroutines the leak check must not count: process-wide
	// singletons a client library starts once and never stops (sarama's metrics
	// ticker), which are not leaks of the transport.
	IgnoreGoroutines []goleak.Option
}

type rule struct {
	name     string
	needs    func(transport.Capabilities) bool // nil: every transport
	parallel bool
	run      func(t *testing.T, h Harness)
}

var rules = []rule{
	// Runs first and alone, so that goroutines of other rules cannot hide a leak.
	{name: "CloseIdempotentNoLeak", run: testCloseIdempotentNoLeak},
	// Timing rules run alone too, so that other rules' load does not skew them.
	{name: "DeliveryOrdered", needs: ordered, run: testDeliveryScenario(pubsub.Ordered)},
	{name: "DeliveryUnordered", run: testDeliveryScenario(pubsub.Unordered)},
	{name: "RoundTripMetadata", parallel: true, run: testRoundTripMetadata},
	{name: "TypedDecode", parallel: true, run: testTypedDecode},
	{name: "UndecodableDeadLettered", parallel: true, run: testUndecodableDeadLettered},
	{name: "PoisonInputKeepsFlowing", parallel: true, needs: ordered, run: testPoisonInputKeepsFlowing},
	{name: "OrderPerKey", parallel: true, needs: ordered, run: testOrderPerKey},
	{name: "GroupsFanOut", parallel: true, needs: groups, run: testGroupsFanOut},
	{name: "OnceWithinGroup", parallel: true, needs: groups, run: testOnceWithinGroup},
	{name: "RetainedBeforeSubscribe", parallel: true, needs: retains, run: testRetainedBeforeSubscribe},
	{name: "RedeliveryAfterError", parallel: true, run: testRedeliveryAfterError},
	{name: "NackNoBusyLoop", parallel: true, run: testNackNoBusyLoop},
	{name: "ConcurrentPublishers", parallel: true, run: testConcurrentPublishers},
	{name: "ContextCancellation", parallel: true, run: testContextCancellation},
	{name: "LargeMessage", parallel: true, run: testLargeMessage},
	{name: "HandlerPublishesToOwnTopic", parallel: true, run: testHandlerPublishesToOwnTopic},
	{name: "CorrelationAcrossHandlerPublish", parallel: true, run: testCorrelationAcrossHandlerPublish},
	{name: "ClosedRefuses", parallel: true, run: testClosedRefuses},
	{name: "ReplayToFailingGroup", parallel: true, run: testReplayToFailingGroup},
	{name: "ShutdownDuringBackoff", parallel: true, needs: retains, run: testShutdownDuringBackoff},
	{name: "ConcurrencyKeepsKeyOrder", parallel: true, needs: concurrentOrdered, run: testConcurrencyKeepsKeyOrder},
	{name: "ConcurrencyUnordered", parallel: true, needs: concurrent, run: testConcurrencyUnordered},
	{name: "ConcurrencyRetryHoldsOnlyItsKey", parallel: true, needs: concurrentOrdered, run: testConcurrencyRetryHoldsOnlyItsKey},
	{name: "ConcurrencyRetryFreesWorkers", parallel: true, needs: concurrentOrdered, run: testConcurrencyRetryFreesWorkers},
	{name: "CommitsLowestUnfinished", parallel: true, needs: concurrentOrdered, run: testCommitsLowestUnfinished},
	{name: "ConcurrencyRefusedWithoutCapability", parallel: true, needs: notConcurrent, run: testConcurrencyRefused},
}

func (h Harness) partitions() int { return max(h.Partitions, 1) }

func ordered(c transport.Capabilities) bool       { return c.Ordered }
func notConcurrent(c transport.Capabilities) bool { return !c.Concurrency }
func groups(c transport.Capabilities) bool        { return c.ConsumerGroups }
func retains(c transport.Capabilities) bool       { return c.Retains }

// Run runs every rule against the transport h makes.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.New == nil {
		t.Fatal("testsuite: Harness.New is required")
	}
	if h.Timeout == 0 {
		h.Timeout = 15 * time.Second
	}
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			if r.parallel {
				t.Parallel()
			}
			if r.needs != nil {
				tr := h.New(t)
				caps := tr.Capabilities()
				if err := tr.Close(); err != nil {
					t.Fatalf("closing probe transport: %v", err)
				}
				if !r.needs(caps) {
					t.Skipf("rule %s needs a capability this transport does not declare (%+v)", r.name, caps)
				}
			}
			r.run(t, h)
		})
	}
}
