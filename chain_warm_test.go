package pubsub

import (
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

func TestWarmPoolReturnsWhatTheHandlerReturns(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	p := newWarmPool(stop)
	boom := errors.New("boom")
	out := message.NewMessage("out", nil)
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			msg := message.NewMessage("in", []byte{byte(i)})
			produced, err := p.run(func(m *message.Message) ([]*message.Message, error) {
				if m != msg {
					t.Errorf("handler got message %p, want %p", m, msg)
				}
				if i%2 == 0 {
					return nil, boom
				}
				return []*message.Message{out}, nil
			}, msg)
			if i%2 == 0 && (!errors.Is(err, boom) || produced != nil) {
				t.Errorf("message %d: got %v, %v; want nil, boom", i, produced, err)
			}
			if i%2 == 1 && (err != nil || len(produced) != 1 || produced[0] != out) {
				t.Errorf("message %d: got %v, %v; want [out], nil", i, produced, err)
			}
		})
	}
	wg.Wait()
}

func TestWarmPoolPanicsAndExitsOnTheCaller(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	p := newWarmPool(stop)
	msg := message.NewMessage("in", nil)

	recovered := func() (v any) {
		defer func() { v = recover() }()
		p.run(func(*message.Message) ([]*message.Message, error) { panic("handler panic") }, msg)
		return nil
	}()
	if recovered != "handler panic" {
		t.Errorf("recovered %v on the caller, want the handler's panic", recovered)
	}

	exited := make(chan bool)
	go func() {
		returned := false
		defer func() { exited <- returned }()
		p.run(func(*message.Message) ([]*message.Message, error) { runtime.Goexit(); return nil, nil }, msg)
		returned = true
	}()
	if <-exited {
		t.Error("run returned after the handler called runtime.Goexit, want the caller to exit too")
	}

	// The pool still works after both.
	if _, err := p.run(func(*message.Message) ([]*message.Message, error) { return nil, nil }, msg); err != nil {
		t.Errorf("after a panic and a Goexit: %v", err)
	}
}

// settledGoroutines waits for the goroutines of earlier tests to end and returns how
// many are left.
func settledGoroutines() int {
	n := runtime.NumGoroutine()
	for range 100 {
		time.Sleep(20 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m == n {
			return n
		}
		n = m
	}
	return n
}

func TestWarmPoolEndsItsGoroutinesOnStop(t *testing.T) {
	before := settledGoroutines()
	stop := make(chan struct{})
	p := newWarmPool(stop)
	var wg sync.WaitGroup
	started, release := make(chan struct{}), make(chan struct{})
	for range 20 {
		wg.Go(func() {
			p.run(func(*message.Message) ([]*message.Message, error) {
				started <- struct{}{}
				<-release
				return nil, nil
			}, message.NewMessage("in", nil))
		})
	}
	for range 20 {
		<-started // all 20 run at once: each has a goroutine of the pool
	}
	close(release)
	wg.Wait()
	if n := runtime.NumGoroutine(); n < before+20 {
		t.Fatalf("%d goroutines while 20 handlers ran and idle, want at least %d: the pool keeps none", n, before+20)
	}
	close(stop)
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after stop, want at most %d", n, before)
	}
}
