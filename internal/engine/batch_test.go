package engine

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// batches runs n Do calls of b at once and returns their outcomes by item.
func doAll(b *Batcher[int], ctx, delivery context.Context, items ...int) map[int]error {
	var mu sync.Mutex
	out := map[int]error{}
	var wg sync.WaitGroup
	for _, v := range items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := b.Do(ctx, delivery, v)
			mu.Lock()
			out[v] = err
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

func TestBatcherFullBatchGoesAtOnceAndOutcomesPerItem(t *testing.T) {
	var mu sync.Mutex
	var sizes []int
	b := NewBatcher(BatchConfig[int]{Max: 3, Wait: time.Hour, Run: perItem(func(_ context.Context, items []int) []error {
		mu.Lock()
		sizes = append(sizes, len(items))
		mu.Unlock()
		errs := make([]error, len(items))
		for i, v := range items {
			if v%2 == 1 {
				errs[i] = errors.New("odd")
			}
		}
		return errs
	})})
	// Six items fill two batches of three: neither waits the hour.
	out := doAll(b, context.Background(), context.Background(), 0, 1, 2, 3, 4, 5)
	for v, err := range out {
		if (v%2 == 1) != (err != nil) {
			t.Errorf("item %d: %v", v, err)
		}
	}
	if len(sizes) != 2 || sizes[0] != 3 || sizes[1] != 3 {
		t.Errorf("batch sizes %v, want [3 3]", sizes)
	}
}

func TestBatcherHandsOverOnStopAndOnDeliveryEnd(t *testing.T) {
	for _, tc := range []string{"stop", "delivery"} {
		t.Run(tc, func(t *testing.T) {
			stop := make(chan struct{})
			delivery, end := context.WithCancel(context.Background())
			defer end()
			ran := make(chan int, 1)
			b := NewBatcher(BatchConfig[int]{Max: 10, Wait: time.Hour, Stop: stop, Run: perItem(func(_ context.Context, items []int) []error {
				ran <- len(items)
				return nil
			})})
			done := make(chan error, 1)
			go func() { done <- b.Do(context.Background(), delivery, 1) }()
			select {
			case <-ran:
				t.Fatal("the batch went before its wait, its stop or its delivery's end")
			case <-time.After(50 * time.Millisecond): // gives a wrong early hand-over the chance to show
			}
			if tc == "stop" {
				close(stop)
			} else {
				end()
			}
			select {
			case n := <-ran:
				if n != 1 {
					t.Errorf("batch of %d, want 1", n)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the batch was not handed over")
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestBatcherBoundsBatchesInFlight(t *testing.T) {
	var running, most atomic.Int32
	release := make(chan struct{})
	b := NewBatcher(BatchConfig[int]{Max: 1, Concurrency: 2, Run: perItem(func(_ context.Context, items []int) []error {
		n := running.Add(1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		<-release
		running.Add(-1)
		return nil
	})})
	finished := make(chan struct{})
	go func() {
		doAll(b, context.Background(), context.Background(), 1, 2, 3, 4, 5)
		close(finished)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for running.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("two batches never ran at once")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // gives a third batch the chance to start wrongly
	close(release)
	<-finished
	if most.Load() != 2 {
		t.Errorf("%d batches ran at once, want at most 2", most.Load())
	}
}

func TestBatcherEndedContextFailsWaitingBatch(t *testing.T) {
	block, running := make(chan struct{}), make(chan struct{}, 2)
	b := NewBatcher(BatchConfig[int]{Max: 1, Concurrency: 1, Run: perItem(func(context.Context, []int) []error {
		running <- struct{}{}
		<-block
		return nil
	})})
	first := make(chan error, 1)
	go func() { first <- b.Do(context.Background(), context.Background(), 1) }()
	<-running // the first batch holds the only slot
	ctx, cancel := context.WithCancel(context.Background())
	second := make(chan error, 1)
	go func() { second <- b.Do(ctx, context.Background(), 2) }()
	cancel()
	if err := <-second; !errors.Is(err, context.Canceled) {
		t.Errorf("a batch whose context ended while it waited for a slot: %v, want context.Canceled", err)
	}
	close(block)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
}

// perItem makes a Run of a function that gives outcomes per item (never whole).
func perItem(f func(context.Context, []int) []error) func(context.Context, []int) ([]error, bool) {
	return func(ctx context.Context, items []int) ([]error, bool) { return f(ctx, items), false }
}
