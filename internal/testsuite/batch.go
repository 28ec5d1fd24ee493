package testsuite

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/pubsubtest"
	"github.com/pubsubkit/pubsub/transport"
)

// batchRules are the rules of SubscribeBatch, appended to rules.
var batchRules = []rule{
	{name: "BatchSizeBound", parallel: true, needs: concurrent, run: testBatchSizeBound},
	{name: "BatchWaitBound", parallel: true, needs: concurrent, run: testBatchWaitBound},
	{name: "BatchFailedAlone", parallel: true, run: testBatchFailedAlone},
	{name: "BatchWholeFailure", parallel: true, run: testBatchWholeFailure},
	{name: "BatchOrderPerKey", parallel: true, needs: concurrentOrdered, run: testBatchOrderPerKey},
	{name: "BatchSeveralPerKey", parallel: true, needs: concurrentOrdered, run: testBatchSeveralPerKey},
	{name: "BatchWholeRetriedAsBatch", parallel: true, needs: ordered, run: testBatchWholeRetriedAsBatch},
	{name: "BatchHotKeyRetry", parallel: true, needs: concurrentOrdered, run: testBatchHotKeyRetry},
	{name: "BatchDrainHandsOver", parallel: true, needs: concurrent, run: testBatchDrain},
	{name: "BatchRefusedWithoutCapability", parallel: true, needs: notConcurrent, run: testBatchRefused},
}

func init() { rules = append(rules, batchRules...) }

// publishOrders publishes one order per id, each under its own key unless key is set.
func publishOrders(t *testing.T, c *pubsub.Client, topic pubsub.Topic[order], key string, ids ...string) {
	t.Helper()
	for _, id := range ids {
		k := key
		if k == "" {
			k = id
		}
		if err := pubsub.Publish(context.Background(), c, topic, order{ID: id, Key: k}, pubsub.WithMessageKey(k)); err != nil {
			t.Fatal(err)
		}
	}
}

// batchOf is WithBatch(max, 300 ms), or batches of one on a transport that hands out
// one message at a time.
func batchOf(tr transport.Transport, max int) pubsub.SubscribeOption {
	if !tr.Capabilities().Concurrency {
		return pubsub.WithBatch(1, 0)
	}
	return pubsub.WithBatch(max, 300*time.Millisecond)
}

// handledOnce fails the test unless every id was handled without failing exactly
// once in bs, and nothing else was.
func handledOnce(t *testing.T, bs []pubsubtest.Batch[order], ids ...string) {
	t.Helper()
	seen := map[string]int{}
	for _, m := range pubsubtest.Succeeded(bs) {
		seen[m.Payload.ID]++
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Errorf("message %s handled %d times without failing, want once (all: %v)", id, seen[id], seen)
		}
	}
	if len(seen) != len(ids) {
		t.Errorf("handled %v, want exactly %v", seen, ids)
	}
}

// testBatchSizeBound: no batch holds more than WithBatch's max, every message is
// handled once.
func testBatchSizeBound(t *testing.T, h Harness) {
	c := newClient(t, h)
	topic := pubsub.NewTopic[order](uniqueName(t, "batchsize"))
	rec := subscribeRecorded(t, h, c, topic, pubsub.WithBatch(7, 500*time.Millisecond),
		pubsub.WithDelivery(pubsub.Delivery{Concurrency: 2}))
	pubsubtest.Run(t, c)
	var ids []string
	for i := range 40 {
		ids = append(ids, fmt.Sprintf("m%02d", i))
	}
	publishOrders(t, c, topic, "", ids...)
	bs := rec.Wait(t, len(ids))
	for _, b := range bs {
		if len(b.Messages) > 7 || len(b.Messages) == 0 {
			t.Errorf("a batch of %d messages, want 1 to 7", len(b.Messages))
		}
	}
	handledOnce(t, bs, ids...)
}

// testBatchWaitBound: a batch that does not fill is handed over once its wait ran out
// after its first message: never earlier, and within the wait plus a second.
func testBatchWaitBound(t *testing.T, h Harness) {
	c := newClient(t, h)
	topic := pubsub.NewTopic[order](uniqueName(t, "batchwait"))
	const wait = 1500 * time.Millisecond
	rec := subscribeRecorded(t, h, c, topic, pubsub.WithBatch(100, wait))
	pubsubtest.Run(t, c)
	start := time.Now()
	publishOrders(t, c, topic, "", "alone")
	b := rec.WaitCalls(t, 1)[0]
	if len(b.Messages) != 1 || b.Messages[0].Payload.ID != "alone" {
		t.Fatalf("batch %v, want the one message", b.Messages)
	}
	// From below exactly: the message arrived after start and waited the whole wait.
	if took := b.At.Sub(start); took < wait {
		t.Errorf("batch handed over %s after the publish began, before its wait of %s ran out", took, wait)
	} else if took > wait+max(time.Second, wait) {
		t.Errorf("batch handed over %s after the publish, want at most %s", took, wait+max(time.Second, wait))
	}
}

// testBatchFailedAlone: Failed(m, err) fails m alone. The batch's other messages are
// handled once; a failed message is handled again without them and then succeeds; a
// permanently failed one is dead-lettered once with its own reason; a message whose
// retries run out is dead-lettered with its own reason. A transport that hands out
// one message at a time runs it with batches of one.
func testBatchFailedAlone(t *testing.T, h Harness) {
	c, tr := newClientOn(t, h)
	name := uniqueName(t, "batchfailed")
	topic := pubsub.NewTopic[order](name)
	ordering := pubsub.Unordered
	if tr.Capabilities().Ordered {
		ordering = pubsub.Ordered
	}
	var mu sync.Mutex
	attempts := map[string]int{}
	rec := pubsubtest.RecordBatches(func(_ context.Context, ms []*pubsub.Message[order]) error {
		mu.Lock()
		defer mu.Unlock()
		var errs []error
		for _, m := range ms {
			attempts[m.Payload.ID]++
			switch {
			case m.Payload.ID == "flaky" && attempts["flaky"] == 1:
				errs = append(errs, pubsub.Failed(m, errors.New("flaky once")))
			case m.Payload.ID == "bad":
				errs = append(errs, pubsub.Failed(m, pubsub.Permanent(errors.New("bad row 7"))))
			case m.Payload.ID == "doomed":
				errs = append(errs, pubsub.Failed(m, errors.New("never works")))
			}
		}
		return errors.Join(errs...)
	})
	rec.Timeout = h.Timeout
	if err := pubsub.SubscribeBatch(c, topic, "g", rec.Handler, batchOf(tr, 10),
		pubsub.WithDelivery(pubsub.Delivery{Retry: 2, BackoffDelay: 20 * time.Millisecond, Ordering: ordering})); err != nil {
		t.Fatal(err)
	}
	dead := subscribe(t, tr, pubsub.DeadLetterTopicName(name, "g"), "inspect")
	pubsubtest.Run(t, c)
	publishOrders(t, c, topic, "", "a", "b", "flaky", "bad", "c", "doomed")

	letters := receive(t, dead, 2, h.Timeout)
	reasons := map[string]string{}
	for _, l := range letters {
		reasons[l.Metadata.Get(metadata.Key)] = l.Metadata.Get(metadata.DeadLetterReason)
	}
	if !strings.Contains(reasons["bad"], "bad row 7") || !strings.Contains(reasons["doomed"], "never works") {
		t.Errorf("dead letters %v, want bad (bad row 7) and doomed (never works)", reasons)
	}
	bs := rec.Wait(t, 4)
	handledOnce(t, bs, "a", "b", "c", "flaky")
	mu.Lock()
	defer mu.Unlock()
	if attempts["bad"] != 1 || attempts["flaky"] != 2 || attempts["doomed"] != 3 {
		t.Errorf("attempts %v, want bad 1, flaky 2, doomed 3", attempts)
	}
	for _, id := range []string{"a", "b", "c"} {
		if attempts[id] != 1 {
			t.Errorf("%s was handed to the handler %d times, want once", id, attempts[id])
		}
	}
	select {
	case l := <-dead:
		t.Errorf("an extra dead letter: %s", l.Metadata.Get(metadata.Key))
	case <-time.After(100 * time.Millisecond):
	}
}

// testBatchWholeFailure: any other error fails every message of the batch: each is
// retried under the policy and then dead-lettered with that error (batches of one on a
// transport that hands out one message at a time).
func testBatchWholeFailure(t *testing.T, h Harness) {
	c, tr := newClientOn(t, h)
	name := uniqueName(t, "batchwhole")
	topic := pubsub.NewTopic[order](name)
	rec := pubsubtest.RecordBatches(func(context.Context, []*pubsub.Message[order]) error {
		return errors.New("database down")
	})
	rec.Timeout = h.Timeout
	if err := pubsub.SubscribeBatch(c, topic, "g", rec.Handler, batchOf(tr, 10),
		pubsub.WithDelivery(pubsub.Delivery{Retry: 1, BackoffDelay: 20 * time.Millisecond, Ordering: pubsub.Unordered})); err != nil {
		t.Fatal(err)
	}
	dead := subscribe(t, tr, pubsub.DeadLetterTopicName(name, "g"), "inspect")
	pubsubtest.Run(t, c)
	publishOrders(t, c, topic, "", "x", "y", "z")
	letters := receive(t, dead, 3, h.Timeout)
	for _, l := range letters {
		if r := l.Metadata.Get(metadata.DeadLetterReason); !strings.Contains(r, "database down") {
			t.Errorf("dead letter %s with reason %q, want the batch's error", l.Metadata.Get(metadata.Key), r)
		}
	}
	seen := map[string]int{}
	for _, b := range rec.Calls() {
		for _, m := range b.Messages {
			seen[m.Payload.ID]++
		}
	}
	for _, id := range []string{"x", "y", "z"} {
		if seen[id] != 2 {
			t.Errorf("%s handled %d times, want 2 (the attempt and its one retry)", id, seen[id])
		}
	}
}

// testBatchDrain: a batch waiting for more messages is handed over at once when the
// client drains, and its messages are handled before Run returns.
func testBatchDrain(t *testing.T, h Harness) {
	// The message's own span starts once a worker runs its chain: from then on it goes
	// to the batch. (The transport's in-flight count also holds a message handed out
	// but not yet taken by a worker, which the drain leaves for redelivery.)
	inChain := &spanStarted{started: make(chan struct{})}
	c := newClient(t, h, pubsub.WithTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(inChain))))
	topic := pubsub.NewTopic[order](uniqueName(t, "batchdrain"))
	inChain.name = "process " + topic.Name()
	rec := subscribeRecorded(t, h, c, topic, pubsub.WithBatch(100, time.Hour))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- c.Run(ctx) }()
	publishOrders(t, c, topic, "", "waiting")
	select {
	case <-inChain.started:
	case <-time.After(h.Timeout):
		t.Fatalf("the message never reached its chain within %s", h.Timeout)
	}
	cancel()
	select {
	case err := <-ran:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(h.Timeout):
		t.Fatalf("Run did not return within %s of the drain; the batch waited", h.Timeout)
	}
	handledOnce(t, rec.Calls(), "waiting")
}

// spanStarted is a span processor that closes started when the first span named
// name starts.
type spanStarted struct {
	sdktrace.SpanProcessor
	name    string
	once    sync.Once
	started chan struct{}
}

func (p *spanStarted) OnStart(_ context.Context, s sdktrace.ReadWriteSpan) {
	if s.Name() == p.name {
		p.once.Do(func() { close(p.started) })
	}
}
func (p *spanStarted) OnEnd(sdktrace.ReadOnlySpan)      {}
func (p *spanStarted) Shutdown(context.Context) error   { return nil }
func (p *spanStarted) ForceFlush(context.Context) error { return nil }

// testBatchRefused: a transport that hands out one message at a time refuses batches
// of more than one.
func testBatchRefused(t *testing.T, h Harness) {
	c := newClient(t, h)
	topic := pubsub.NewTopic[order](uniqueName(t, "orders"))
	err := pubsub.SubscribeBatch(c, topic, "g1", pubsubtest.RecordBatches[order](nil).Handler, pubsub.WithBatch(10, time.Second))
	if !errors.Is(err, pubsub.ErrInvalidOption) || !strings.Contains(err.Error(), "WithBatch") {
		t.Fatalf("SubscribeBatch with WithBatch(10): %v, want ErrInvalidOption naming WithBatch", err)
	}
}

// subscribeRecorded subscribes a batch recorder (waiting up to h.Timeout) to topic in
// group "g" with opts, failing the test if SubscribeBatch refuses.
func subscribeRecorded(t *testing.T, h Harness, c *pubsub.Client, topic pubsub.Topic[order], opts ...pubsub.SubscribeOption) *pubsubtest.Batches[order] {
	t.Helper()
	rec := pubsubtest.RecordBatches[order](nil)
	rec.Timeout = h.Timeout
	if err := pubsub.SubscribeBatch(c, topic, "g", rec.Handler, opts...); err != nil {
		t.Fatal(err)
	}
	return rec
}
