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

// TestBatcherFailedForGoodHoldsUntilDone: a message that failed for good (not
// retried: it goes to its dead letter) holds the later messages of its key in its
// batch until its chain is done. Once it is acked (its dead letter stored) they get
// the outcomes the handler gave them, handled once. When it is nacked (the dead letter
// could not be stored) it comes again under its id, and they wait for it as behind an
// in-place retry, with a later message of the key: they are handed over again after
// it, in order. Either way the key leaves no record.
func TestBatcherFailedForGoodHoldsUntilDone(t *testing.T) {
	for _, acked := range []bool{true, false} {
		t.Run(fmt.Sprint("acked=", acked), func(t *testing.T) {
			var mu sync.Mutex
			var calls [][]int
			b := orderedBatcher(nil, func(items []int) ([]error, bool) {
				mu.Lock()
				calls = append(calls, append([]int(nil), items...))
				mu.Unlock()
				errs := make([]error, len(items))
				for i, v := range items {
					if v == 1 {
						errs[i] = errors.New("permanent")
					}
				}
				return errs, false
			})
			k := &fakeKey{passed: map[int]chan struct{}{}}
			errs := make([]chan error, 4)
			do := func(n, v int) {
				errs[n] = make(chan error, 1)
				go func() { errs[n] <- b.Do(context.Background(), keyed{context.Background(), fakeOrder{k, n}}, v) }()
			}
			for n := range 3 {
				do(n, n*10+1)
			}
			if err := <-errs[0]; fmt.Sprint(err) != "permanent" {
				t.Fatalf("message 0: %v, want its failure", err)
			}
			select {
			case err := <-errs[1]:
				t.Fatalf("message 1 got %v before 0's chain was done", err)
			case <-time.After(50 * time.Millisecond): // gives a wrong outcome the chance to show
			}
			want := "[[1 11 21]]"
			if acked {
				b.Done(0, nil)
			} else {
				b.Done(0, errors.New("dead letter not stored"))
				do(3, 31) // a later message of the key: it waits too
				select {
				case err := <-errs[1]:
					t.Fatalf("message 1 got %v before 0 came again", err)
				case <-time.After(50 * time.Millisecond):
				}
				// 0 is redelivered (a later attempt, so it succeeds): 1, 2 and 3 follow it.
				errs[0] = make(chan error, 1)
				go func() { errs[0] <- b.Do(context.Background(), keyed{context.Background(), fakeOrder{k, 3}}, 3) }()
				want = "[[1 11 21] [3 11 21 31]]"
			}
			for n := range errs {
				if errs[n] == nil || acked && n == 0 {
					continue
				}
				select {
				case err := <-errs[n]:
					if err != nil {
						t.Errorf("message %d: %v, want success", n, err)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("message %d got no outcome", n)
				}
			}
			mu.Lock()
			if fmt.Sprint(calls) != want {
				t.Errorf("calls %v, want %s", calls, want)
			}
			mu.Unlock()
			if n := b.records(); n != 0 {
				t.Errorf("%d key and group records left, want none", n)
			}
		})
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

// TestBatcherRevokeLeavesNoRecords: once a revoke made a key's held messages leave
// (and its blocker's chain ended, nacked), and once a whole-batch failure's messages
// were revoked before they came back, the Batcher keeps no record of the key or the
// group.
func TestBatcherRevokeLeavesNoRecords(t *testing.T) {
	b := orderedBatcher(nil, func(items []int) ([]error, bool) {
		errs := make([]error, len(items))
		for i, v := range items {
			switch v {
			case 1: // key k, message 0: retried, holds 1 back
				errs[i] = errors.New("once")
			case 101, 111: // keys w and x: a whole failure
				return []error{errors.New("down"), errors.New("down")}, true
			}
		}
		return errs, false
	})
	revoke, revoked := context.WithCancel(context.Background())
	k := &fakeKey{passed: map[int]chan struct{}{}}
	errs := make([]chan error, 2)
	for n := range 2 {
		errs[n] = make(chan error, 1)
		go func() { errs[n] <- b.Do(context.Background(), keyed{revoke, fakeOrder{k, n}}, n*10+1) }()
	}
	if err := <-errs[0]; fmt.Sprint(err) != "once" {
		t.Fatalf("message 0: %v, want its failure", err)
	}
	// The whole failure of w and x, whose retries are revoked before they come back.
	w := &fakeKey{passed: map[int]chan struct{}{}}
	x := &fakeKey{passed: map[int]chan struct{}{}}
	wx := make(chan error, 2)
	go func() { wx <- b.Do(context.Background(), keyed{revoke, fakeOrder{w, 0}}, 101) }()
	go func() { wx <- b.Do(context.Background(), keyed{revoke, fakeOrder{x, 0}}, 111) }()
	for range 2 {
		if err := <-wx; fmt.Sprint(err) != "down" {
			t.Fatalf("whole failure: %v, want down", err)
		}
	}
	revoked()
	if err := <-errs[1]; !errors.Is(err, errHeld) {
		t.Fatalf("message 1 on revoke: %v, want Held", err)
	}
	b.Done(0, errors.New("retry wait interrupted")) // 0's chain ends, nacked
	// The chains of w and x end nacked too; the groups' records go as their
	// deliveries end.
	b.Done(10, errors.New("retry wait interrupted"))
	b.Done(11, errors.New("retry wait interrupted"))
	for deadline := time.Now().Add(10 * time.Second); b.records() != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d key and group records left after the revoke, want none", b.records())
		}
	}
}
