package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	pubsub "github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/internal/kafkatest"
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

// TestGroupSharedWithLibrdkafka runs a librdkafka member (cooperative-sticky) and a
// pubsubkit subscription in one consumer group on a 6-partition topic: both get
// partitions and messages, together they read every message; when the librdkafka
// member leaves, the pubsubkit one takes over every partition and reads everything
// published after.
func TestGroupSharedWithLibrdkafka(t *testing.T) {
	t.Parallel()
	requirePython(t)
	cluster := kafkatest.New(t)
	topic := kafkatest.Topic("shared")
	const group = "shared-group"
	const partitions = 6
	createTopic(t, cluster, topic, partitions)

	member := &rdkafkaMember{owned: map[int32]bool{}, seen: map[int]bool{}}
	proc := start(t, "member.py", map[string]any{"topic": topic, "config": rdkafka(cluster, map[string]any{
		"group.id": group, "partition.assignment.strategy": "cooperative-sticky",
		"heartbeat.interval.ms": 500, "session.timeout.ms": 6000, "auto.commit.interval.ms": 200,
	})})
	member.follow(t, proc)
	eventually(t, "librdkafka takes the partitions", func() bool {
		owned, _, _ := member.state()
		return len(owned) == partitions
	})

	client := openClient(t, cluster, "session_timeout=6s&rebalance_timeout=3s&commit_interval=200ms")
	tp := pubsub.NewTopic[value](topic)
	ours := newSink[value]()
	must(t, pubsub.Subscribe(client, tp, group, ours.handle))
	run(t, client)
	oursOwned := func() []int32 {
		var ps []int32
		for _, h := range client.Health() {
			for _, p := range h.Partitions {
				ps = append(ps, p.Partition)
			}
		}
		slices.Sort(ps)
		return ps
	}
	eventually(t, "the group shares the partitions", func() bool {
		theirs, _, _ := member.state()
		return len(theirs) > 0 && len(oursOwned()) > 0 && len(theirs)+len(oursOwned()) == partitions
	})
	theirs, _, _ := member.state()
	t.Logf("librdkafka holds %v, pubsubkit %v", theirs, oursOwned())

	publish := func(from, to int) {
		for n := from; n < to; n++ {
			must(t, pubsub.Publish(context.Background(), client, tp, value{N: n}, pubsub.WithMessageKey(fmt.Sprint("k-", n))))
		}
	}
	const round = 60
	publish(0, round)
	oursSeen := func() map[int]bool {
		seen := map[int]bool{}
		for _, m := range ours.messages() {
			seen[m.Payload.N] = true
		}
		return seen
	}
	eventually(t, "every message of the first round read by one member or the other", func() bool {
		_, theirs, _ := member.state()
		mine := oursSeen()
		for n := range round {
			if !theirs[n] && !mine[n] {
				return false
			}
		}
		return true
	})
	_, theirSeen, _ := member.state()
	if len(theirSeen) == 0 || len(oursSeen()) == 0 {
		t.Fatalf("one member read nothing: librdkafka %d messages, pubsubkit %d", len(theirSeen), len(oursSeen()))
	}
	t.Logf("first round: librdkafka read %d, pubsubkit %d", len(theirSeen), len(oursSeen()))

	proc.say(t, "leave")
	eventually(t, "librdkafka leaves the group", func() bool {
		_, _, left := member.state()
		return left
	})
	eventually(t, "pubsubkit takes every partition", func() bool { return len(oursOwned()) == partitions })
	publish(round, 2*round)
	ours.wait(t, "every message of the second round in pubsubkit", func([]*pubsub.Message[value]) bool {
		mine := oursSeen()
		for n := round; n < 2*round; n++ {
			if !mine[n] {
				return false
			}
		}
		return true
	})
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
