package interop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"

	"github.com/IBM/sarama"

	pubsub "github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/internal/kafkatest"
)

// foreignMember is a consumer group member of another client.
type foreignMember interface {
	// state returns the partitions it holds, the values it read and whether it left.
	state() (owned []int32, seen map[int]bool, left bool)
	// leave makes it commit what it read and leave the group.
	leave(t testing.TB)
}

// rdkafkaProcess is a member.py process as a foreignMember.
type rdkafkaProcess struct {
	*rdkafkaMember
	proc *process
}

func (r rdkafkaProcess) leave(t testing.TB) { r.proc.say(t, "leave") }

// startRdkafka starts a librdkafka member (member.py) with config added to the
// cluster's settings.
func startRdkafka(config map[string]any) func(t testing.TB, c *kafkatest.Cluster, topic, group string) foreignMember {
	return func(t testing.TB, c *kafkatest.Cluster, topic, group string) foreignMember {
		member := &rdkafkaMember{owned: map[int32]bool{}, seen: map[int]bool{}}
		config := maps.Clone(config)
		config["group.id"] = group
		proc := start(t, "member.py", map[string]any{"topic": topic, "config": rdkafka(c, config)})
		member.follow(t, proc)
		return rdkafkaProcess{member, proc}
	}
}

// saramaMember is an IBM/sarama consumer group member with sarama's default
// configuration (range balancing, a 10 s session), except that a new group starts at
// the oldest offset (sarama's default is the newest) so that every message counts.
type saramaMember struct {
	t      testing.TB
	topic  string
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	owned []int32
	seen  map[int]bool
	left  bool
}

func startSarama(t testing.TB, c *kafkatest.Cluster, topic, group string) foreignMember {
	cfg := sarama.NewConfig()
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cg, err := sarama.NewConsumerGroup(c.Addrs, group, cfg)
	if err != nil {
		t.Fatalf("sarama.NewConsumerGroup: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &saramaMember{t: t, topic: topic, cancel: cancel, done: make(chan struct{}), seen: map[int]bool{}}
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{topic}, m); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
				t.Logf("sarama: %v", err)
			}
		}
		if err := cg.Close(); err != nil {
			t.Errorf("closing the sarama group: %v", err)
		}
		m.mu.Lock()
		m.owned, m.left = nil, true
		m.mu.Unlock()
	}()
	t.Cleanup(func() { m.cancel(); <-m.done })
	return m
}

func (m *saramaMember) Setup(s sarama.ConsumerGroupSession) error {
	m.mu.Lock()
	m.owned = slices.Clone(s.Claims()[m.topic])
	m.mu.Unlock()
	return nil
}

func (m *saramaMember) Cleanup(sarama.ConsumerGroupSession) error {
	m.mu.Lock()
	m.owned = nil
	m.mu.Unlock()
	return nil
}

func (m *saramaMember) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for msg := range claim.Messages() {
		var v value
		if err := json.Unmarshal(msg.Value, &v); err != nil {
			m.t.Errorf("sarama read %q: %v", msg.Value, err)
		}
		m.mu.Lock()
		m.seen[v.N] = true
		m.mu.Unlock()
		s.MarkMessage(msg, "")
	}
	return nil
}

func (m *saramaMember) state() ([]int32, map[int]bool, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	owned := slices.Clone(m.owned)
	slices.Sort(owned)
	return owned, maps.Clone(m.seen), m.left
}

func (m *saramaMember) leave(testing.TB) {
	m.cancel()
	<-m.done
}

// TestGroupSharedWithSarama: see sharedGroup; sarama's default member balances with
// range only.
func TestGroupSharedWithSarama(t *testing.T) {
	t.Parallel()
	sharedGroup(t, "sarama", startSarama)
}

// TestGroupSharedWithLibrdkafka: see sharedGroup; librdkafka's default member
// (confluent-kafka for Python, Go and .NET) lists range,roundrobin.
func TestGroupSharedWithLibrdkafka(t *testing.T) {
	t.Parallel()
	requirePython(t)
	sharedGroup(t, "librdkafka", startRdkafka(map[string]any{
		"heartbeat.interval.ms": 500, "session.timeout.ms": 6000, "auto.commit.interval.ms": 200,
	}))
}

// TestGroupSharedWithLibrdkafkaCooperative: see sharedGroup; a librdkafka member set
// to cooperative-sticky alone.
func TestGroupSharedWithLibrdkafkaCooperative(t *testing.T) {
	t.Parallel()
	requirePython(t)
	sharedGroup(t, "librdkafka-cooperative", startRdkafka(map[string]any{
		"partition.assignment.strategy": "cooperative-sticky",
		"heartbeat.interval.ms":         500, "session.timeout.ms": 6000, "auto.commit.interval.ms": 200,
	}))
}

// sharedGroup runs a member of another client and a pubsubkit subscription with the
// default balancers in one consumer group on a 6-partition topic. The other member
// comes first and takes every partition; ours joins: both hold partitions, and
// together they read every message; ours leaves: the other takes every partition
// and reads everything published after; ours joins again and the other leaves: ours
// takes every partition and reads everything published after. Ours never reports a
// group error.
func sharedGroup(t *testing.T, name string, startTheirs func(testing.TB, *kafkatest.Cluster, string, string) foreignMember) {
	cluster := kafkatest.New(t)
	topic := kafkatest.Topic("shared-" + name)
	group := "shared-" + name
	const partitions = 6
	createTopic(t, cluster, topic, partitions)
	tp := pubsub.NewTopic[value](topic)
	publisher := openClient(t, cluster, "")
	publish := func(from, to int) {
		for n := from; n < to; n++ {
			must(t, pubsub.Publish(context.Background(), publisher, tp, value{N: n}, pubsub.WithMessageKey(fmt.Sprint("k-", n))))
		}
	}
	const round = 60
	all := func(seen map[int]bool, from, to int) bool {
		for n := from; n < to; n++ {
			if !seen[n] {
				return false
			}
		}
		return true
	}

	theirs := startTheirs(t, cluster, topic, group)
	eventually(t, name+" takes every partition", func() bool {
		owned, _, _ := theirs.state()
		return len(owned) == partitions
	})

	type member struct {
		client *pubsub.Client
		sink   *sink[value]
	}
	join := func() member {
		client := openClient(t, cluster, "session_timeout=6s&rebalance_timeout=3s&commit_interval=200ms")
		s := newSink[value]()
		must(t, pubsub.Subscribe(client, tp, group, s.handle))
		run(t, client)
		return member{client, s}
	}
	owned := func(m member) (ps []int32) {
		for _, h := range m.client.Health() {
			if h.GroupError != "" {
				t.Errorf("ours reports a group error: %s", h.GroupError)
			}
			for _, p := range h.Partitions {
				ps = append(ps, p.Partition)
			}
		}
		slices.Sort(ps)
		return ps
	}
	seen := func(m member) map[int]bool {
		got := map[int]bool{}
		for _, msg := range m.sink.messages() {
			got[msg.Payload.N] = true
		}
		return got
	}

	ours := join()
	eventually(t, "the group shares the partitions", func() bool {
		their, _, _ := theirs.state()
		return len(their) > 0 && len(owned(ours)) > 0 && len(their)+len(owned(ours)) == partitions
	})
	their, _, _ := theirs.state()
	t.Logf("%s holds %v, pubsubkit %v", name, their, owned(ours))
	publish(0, round)
	eventually(t, "every message of the first round read by one member or the other", func() bool {
		_, theirSeen, _ := theirs.state()
		return all(mergeSeen(theirSeen, seen(ours)), 0, round)
	})
	_, theirSeen, _ := theirs.state()
	if len(theirSeen) == 0 || len(seen(ours)) == 0 {
		t.Fatalf("one member read nothing: %s %d messages, pubsubkit %d", name, len(theirSeen), len(seen(ours)))
	}
	t.Logf("first round: %s read %d, pubsubkit %d", name, len(theirSeen), len(seen(ours)))

	must(t, ours.client.Close()) // leaves the group, committing what it finished
	eventually(t, name+" takes every partition after ours left", func() bool {
		owned, _, _ := theirs.state()
		return len(owned) == partitions
	})
	publish(round, 2*round)
	eventually(t, "every message of the second round read by "+name, func() bool {
		_, theirSeen, _ := theirs.state()
		return all(theirSeen, round, 2*round)
	})

	again := join()
	eventually(t, "the group shares the partitions again", func() bool {
		their, _, _ := theirs.state()
		return len(their) > 0 && len(owned(again)) > 0 && len(their)+len(owned(again)) == partitions
	})
	theirs.leave(t)
	eventually(t, name+" leaves the group", func() bool {
		_, _, left := theirs.state()
		return left
	})
	eventually(t, "pubsubkit takes every partition after "+name+" left", func() bool { return len(owned(again)) == partitions })
	publish(2*round, 3*round)
	eventually(t, "every message of the third round read by pubsubkit", func() bool { return all(seen(again), 2*round, 3*round) })
}

func mergeSeen(a, b map[int]bool) map[int]bool {
	m := maps.Clone(a)
	maps.Copy(m, b)
	return m
}
