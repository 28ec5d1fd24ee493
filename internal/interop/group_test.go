package interop

import (
	"encoding/json"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"
)

// memberEvent is one line of member.py.
type memberEvent struct {
	Event      string  `json:"event"`
	Partitions []int32 `json:"partitions"`
	Partition  int32   `json:"partition"`
	Offset     int64   `json:"offset"`
	Value      *string `json:"value"`
}

// rdkafkaMember follows a member.py process: the partitions it holds and the values
// it read.
type rdkafkaMember struct {
	mu    sync.Mutex
	owned map[int32]bool
	seen  map[int]bool
	left  bool
}

// follow reads p's lines until p ends; the test waits for it when it ends, after
// killing p.
func (r *rdkafkaMember) follow(t testing.TB, p *process) {
	done := make(chan struct{})
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-done
	})
	go func() {
		defer close(done)
		for line := range p.lines {
			r.apply(t, line)
		}
	}()
}

func (r *rdkafkaMember) apply(t testing.TB, line []byte) {
	var e memberEvent
	if err := json.Unmarshal(line, &e); err != nil {
		t.Errorf("member.py printed %q: %v", line, err)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch e.Event {
	case "assigned":
		for _, p := range e.Partitions {
			r.owned[p] = true
		}
	case "revoked":
		for _, p := range e.Partitions {
			delete(r.owned, p)
		}
	case "message":
		var v value
		if err := json.Unmarshal([]byte(*e.Value), &v); err != nil {
			t.Errorf("member.py read %q: %v", *e.Value, err)
		}
		r.seen[v.N] = true
	case "left":
		r.left = true
	}
}

func (r *rdkafkaMember) state() (owned []int32, seen map[int]bool, left bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for p := range r.owned {
		owned = append(owned, p)
	}
	slices.Sort(owned)
	return owned, maps.Clone(r.seen), r.left
}

// eventually waits until cond holds, checking every 20 ms; the test fails after
// waitTimeout.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for: %s", waitTimeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
