package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pubsubkit/pubsub/transport"
)

// fakeKey is one key's KeyOrder: the message n of the key is ready once n-1 passed.
type fakeKey struct {
	mu     sync.Mutex
	passed map[int]chan struct{}
}

func (k *fakeKey) ch(n int) chan struct{} {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.passed[n] == nil {
		k.passed[n] = make(chan struct{})
	}
	return k.passed[n]
}

type fakeOrder struct {
	k *fakeKey
	n int
}

func (o fakeOrder) Key() any { return o.k }
func (o fakeOrder) Ready() <-chan struct{} {
	if o.n == 0 {
		c := make(chan struct{})
		close(c)
		return c
	}
	return o.k.ch(o.n - 1)
}
func (o fakeOrder) Pass() {
	c := o.k.ch(o.n)
	select {
	case <-c:
	default:
		close(c)
	}
}

// keyed is a delivery context that answers the KeyOrder of message n of k.
type keyed struct {
	context.Context
	order fakeOrder
}

func (c keyed) Value(key any) any {
	if transport.IsKeyOrderKey(key) {
		return transport.KeyOrder(c.order)
	}
	return c.Context.Value(key)
}

var errHeld = errors.New("held")

// orderedBatcher is a Batcher of ints, Ordered, whose items are retried while their
// attempt is below 2 (the item's value: n*10 + attempt) and whose Run is run.
func orderedBatcher(stop chan struct{}, run func(items []int) ([]error, bool)) *Batcher[int] {
	return NewBatcher(BatchConfig[int]{Max: 10, Wait: 50 * time.Millisecond, Stop: stop, Ordered: true,
		Retried: func(v int, err error) bool { return v%10 < 2 && err.Error() != "permanent" },
		ID:      func(v int) any { return v / 10 },
		Held:    errHeld,
		Run:     func(_ context.Context, items []int) ([]error, bool) { return run(items) }})
}

// TestBatcherHoldsKeyBehindRetry: a key's messages 0, 1, 2 go in one batch; 0 fails
// and will be retried: 1 and 2 get no outcome (their handling does not count) and
// come again after 0, in order, in its retry batch.
func TestBatcherHoldsKeyBehindRetry(t *testing.T) {
	var mu sync.Mutex
	var calls [][]int
	b := orderedBatcher(nil, func(items []int) ([]error, bool) {
		mu.Lock()
		calls = append(calls, append([]int(nil), items...))
		mu.Unlock()
		errs := make([]error, len(items))
		for i, v := range items {
			if v == 1 { // message 0, attempt 1
				errs[i] = errors.New("once")
			}
		}
		return errs, false
	})
	k := &fakeKey{passed: map[int]chan struct{}{}}
	outcome := make(chan string, 3)
	for n := 2; n >= 0; n-- { // started out of order: the KeyOrder puts them in order
		go func() {
			d := keyed{context.Background(), fakeOrder{k, n}}
			attempt := 1
			for {
				err := b.Do(context.Background(), d, n*10+attempt)
				if err == nil {
					outcome <- fmt.Sprint(n)
					return
				}
				attempt++ // an in-place retry
			}
		}()
	}
	var got []string
	for range 3 {
		select {
		case o := <-outcome:
			got = append(got, o)
		case <-time.After(10 * time.Second):
			t.Fatalf("outcomes so far %v; calls %v", got, calls)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(calls) != "[[1 11 21] [2 11 21]]" {
		t.Errorf("calls %v, want [[1 11 21] [2 11 21]]: 1 and 2 held back and handed over again after 0's retry, still at their first attempt", calls)
	}
}

// TestBatcherPermanentHoldsNothing: a permanent failure (not retried) gives the later
// messages of its key their own outcomes at once.
func TestBatcherPermanentHoldsNothing(t *testing.T) {
	b := orderedBatcher(nil, func(items []int) ([]error, bool) {
		errs := make([]error, len(items))
		for i, v := range items {
			if v == 1 {
				errs[i] = errors.New("permanent")
			}
		}
		return errs, false
	})
	k := &fakeKey{passed: map[int]chan struct{}{}}
	errs := make([]chan error, 3)
	for n := range 3 {
		errs[n] = make(chan error, 1)
		go func() { errs[n] <- b.Do(context.Background(), keyed{context.Background(), fakeOrder{k, n}}, n*10+1) }()
	}
	for n, want := range []string{"permanent", "<nil>", "<nil>"} {
		select {
		case err := <-errs[n]:
			if fmt.Sprint(err) != want {
				t.Errorf("message %d: %v, want %s", n, err, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("message %d got no outcome", n)
		}
	}
}

// TestBatcherHeldLeaveOnStop: messages held back behind a retry leave with Held when
// the drain begins, and so does a later message of their key that arrives after.
func TestBatcherHeldLeaveOnStop(t *testing.T) {
	stop := make(chan struct{})
	b := orderedBatcher(stop, func(items []int) ([]error, bool) {
		errs := make([]error, len(items))
		for i, v := range items {
			if v == 1 {
				errs[i] = errors.New("once")
			}
		}
		return errs, false
	})
	k := &fakeKey{passed: map[int]chan struct{}{}}
	errs := make([]chan error, 3)
	for n := range 2 {
		errs[n] = make(chan error, 1)
		go func() { errs[n] <- b.Do(context.Background(), keyed{context.Background(), fakeOrder{k, n}}, n*10+1) }()
	}
	if err := <-errs[0]; err == nil || err.Error() != "once" {
		t.Fatalf("message 0: %v, want its failure", err)
	}
	select {
	case err := <-errs[1]:
		t.Fatalf("message 1 got %v while 0 waits for its retry", err)
	case <-time.After(100 * time.Millisecond): // gives a wrong outcome the chance to show
	}
	close(stop)
	if err := <-errs[1]; !errors.Is(err, errHeld) {
		t.Errorf("message 1 on drain: %v, want Held", err)
	}
	if err := b.Do(context.Background(), keyed{context.Background(), fakeOrder{k, 2}}, 21); !errors.Is(err, errHeld) {
		t.Errorf("message 2 after the drain began: %v, want Held", err)
	}
}
