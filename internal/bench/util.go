package main

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// payload returns n bytes of letters and digits drawn at random (the same ones every
// run): snappy shrinks them to about three quarters, as it does typical JSON, where a
// run of one byte would shrink twentyfold and make the consumers' fetched batches
// (and their memory) twenty times larger once decompressed.
func payload(n int) []byte {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	r := rand.New(rand.NewPCG(1, uint64(n)))
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return b
}

// callers runs call(w, i) for i in 0..n-1 from k goroutines w, each timing its
// calls, and returns the latencies, or the first error.
func callers(k, n int, call func(w, i int) error) ([]time.Duration, error) {
	var next atomic.Int64
	lat := make([][]time.Duration, k)
	var first atomic.Pointer[error]
	var wg sync.WaitGroup
	for w := range k {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || first.Load() != nil {
					return
				}
				t := time.Now()
				if err := call(w, i); err != nil {
					first.CompareAndSwap(nil, &err)
					return
				}
				lat[w] = append(lat[w], time.Since(t))
			}
		})
	}
	wg.Wait()
	if err := first.Load(); err != nil {
		return nil, *err
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	return all, nil
}
