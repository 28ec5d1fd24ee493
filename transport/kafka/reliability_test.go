package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/pubsubtest"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

// tally counts handlings per message id, from any number of consumers.
type tally struct {
	mu   sync.Mutex
	seen map[string]int
}

func newTally() *tally { return &tally{seen: map[string]int{}} }

func (t *tally) handle(_ context.Context, m *pubsub.Message[order]) error {
	t.mu.Lock()
	t.seen[m.Payload.ID]++
	t.mu.Unlock()
	return nil
}

func (t *tally) distinct() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.seen)
}

// waitAll waits until ids 1..total were all handled, and returns how many are
// missing and how many extra handlings there were.
func (t *tally) waitAll(total int, timeout time.Duration) (missing, dup int) {
	deadline := time.Now().Add(timeout)
	for t.distinct() < total && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := 1; i <= total; i++ {
		switch c := t.seen[fmt.Sprint(i)]; {
		case c == 0:
			missing++
		case c > 1:
			dup += c - 1
		}
	}
	return missing, dup
}

// publishAll publishes ids from+1..total from publishers goroutines, at most rate
// per second in all (0: as fast as it goes).
func publishAll(t *testing.T, c *pubsub.Client, topic pubsub.Topic[order], from, total, publishers, rate int) {
	t.Helper()
	var next atomic.Int64
	next.Store(int64(from))
	var tick <-chan time.Time
	if rate > 0 {
		tk := time.NewTicker(time.Second / time.Duration(rate))
		defer tk.Stop()
		tick = tk.C
	}
	errs := make(chan error, publishers)
	var wg sync.WaitGroup
	for range publishers {
		wg.Go(func() {
			for {
				if tick != nil {
					<-tick
				}
				i := next.Add(1)
				if i > int64(total) {
					return
				}
				if err := pubsub.Publish(context.Background(), c, topic, order{ID: fmt.Sprint(i)}); err != nil {
					errs <- fmt.Errorf("publish %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// groupConfig is a consumer configuration that rebalances in seconds on kfake: a
// short session, and a rebalance timeout under two thirds of it (see
// kafka.Config.RebalanceTimeout).
func groupConfig(partitions int32) kafka.Config {
	return kafka.Config{Partitions: partitions, SessionTimeout: 3 * time.Second, RebalanceTimeout: 1500 * time.Millisecond,
		RetryBackoff: 20 * time.Millisecond, NackDelay: 50 * time.Millisecond, CommitInterval: 200 * time.Millisecond}
}

// TestNoLossUnderBrokerFaults: 10,000 messages flow while the cluster fails about
// one in 50 produce and fetch requests with retriable errors, fails one offset
// commit or group-coordinator request (find coordinator, join, sync, heartbeat)
// every 300 ms, moves partition leaders every 200 ms and group coordinators every
// second, and a second member joins halfway. Nothing is lost.
func TestNoLossUnderBrokerFaults(t *testing.T) {
	const total = 10_000
	cluster := kafkatest.New(t, kfake.GroupMinSessionTimeout(time.Second))
	fake := cluster.RequireFake(t)
	producer := pubsubtest.NewOn(t, newTransport(t, cluster, groupConfig(6)))
	consumer := pubsubtest.NewOn(t, newTransport(t, cluster, groupConfig(6)))
	topic := pubsub.NewTopic[order](kafkatest.Topic("faults"))
	seen := newTally()
	if err := pubsub.Subscribe(consumer.Client, topic, "g", seen.handle); err != nil {
		t.Fatal(err)
	}

	// Produce and fetch requests are many: about one in 50 fails. Offset commits and
	// the group coordinator's requests are few: one of each kind fails every 300 ms.
	handles := map[string][]*kfake.FaultHandle{}
	add := func(key kmsg.Key, f kfake.Fault) {
		f.Keys = []kmsg.Key{key}
		handles[key.Name()] = append(handles[key.Name()], fake.Fault(f))
	}
	for key, errs := range map[kmsg.Key][]*kerr.Error{
		kmsg.Produce: {kerr.NotLeaderForPartition, kerr.RequestTimedOut, kerr.NotEnoughReplicas},
		kmsg.Fetch:   {kerr.NotLeaderForPartition, kerr.UnknownServerError},
	} {
		for _, e := range errs {
			add(key, kfake.Fault{Err: e, Count: -1, When: func(kmsg.Request) bool { return rand.IntN(50*len(errs)) == 0 }})
		}
	}
	periodic := []struct {
		key      kmsg.Key
		err      *kerr.Error
		topLevel bool
	}{
		{kmsg.OffsetCommit, kerr.NotCoordinator, false},
		{kmsg.OffsetCommit, kerr.RequestTimedOut, false},
		{kmsg.FindCoordinator, kerr.CoordinatorNotAvailable, true},
		{kmsg.JoinGroup, kerr.CoordinatorLoadInProgress, true},
		{kmsg.SyncGroup, kerr.NotCoordinator, true},
		{kmsg.Heartbeat, kerr.NotCoordinator, true},
		{kmsg.Heartbeat, kerr.CoordinatorNotAvailable, true},
	}
	stop := make(chan struct{})
	var chaos sync.WaitGroup
	var leaderMoves, coordinatorMoves atomic.Int64
	chaos.Go(func() {
		leaders, coordinators, group := time.NewTicker(200*time.Millisecond), time.NewTicker(time.Second), time.NewTicker(300*time.Millisecond)
		defer leaders.Stop()
		defer coordinators.Stop()
		defer group.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-leaders.C:
				fake.ShufflePartitionLeaders()
				leaderMoves.Add(1)
			case <-coordinators.C:
				fake.RehashCoordinators()
				coordinatorMoves.Add(1)
			case <-group.C:
				p := periodic[i%len(periodic)]
				add(p.key, kfake.Fault{Err: p.err, Count: 1, TopLevel: p.topLevel})
			}
		}
	})
	// A second member joins halfway, so the group rebalances under the faults too.
	publishAll(t, producer.Client, topic, 0, total/2, 8, 2000)
	second := pubsubtest.NewOn(t, newTransport(t, cluster, groupConfig(6)))
	if err := pubsub.Subscribe(second.Client, topic, "g", seen.handle); err != nil {
		t.Fatal(err)
	}
	publishAll(t, producer.Client, topic, total/2, total, 8, 2000)
	missing, dup := seen.waitAll(total, 2*time.Minute)
	close(stop)
	chaos.Wait()
	var counts []string
	var unhit []string
	for _, key := range []kmsg.Key{kmsg.Produce, kmsg.Fetch, kmsg.OffsetCommit, kmsg.FindCoordinator, kmsg.JoinGroup, kmsg.SyncGroup, kmsg.Heartbeat} {
		hits := 0
		for _, h := range handles[key.Name()] {
			hits += h.Hits()
		}
		counts = append(counts, fmt.Sprintf("%s %d", key.Name(), hits))
		if hits == 0 {
			unhit = append(unhit, key.Name())
		}
	}
	t.Logf("faults answered: %s; %d leader moves, %d coordinator moves; %d missing, %d duplicates",
		strings.Join(counts, ", "), leaderMoves.Load(), coordinatorMoves.Load(), missing, dup)
	if missing > 0 {
		t.Fatalf("%d of %d messages lost", missing, total)
	}
	for _, name := range unhit {
		t.Errorf("no %s fault was answered: that part of the test proved nothing", name)
	}
}

// TestRebalanceChurn: consumers of one group join and leave every 700 ms while
// 20,000 messages flow. Nothing is lost.
func TestRebalanceChurn(t *testing.T) {
	const total = 20_000
	cluster := kafkatest.New(t, kfake.GroupMinSessionTimeout(time.Second))
	producer := pubsubtest.NewOn(t, newTransport(t, cluster, groupConfig(6)))
	topic := pubsub.NewTopic[order](kafkatest.Topic("churn"))
	seen := newTally()

	var members []*pubsub.Client
	join := func() {
		c, err := pubsub.New(newTransport(t, cluster, groupConfig(6)))
		if err != nil {
			t.Fatal(err)
		}
		if err := pubsub.Subscribe(c, topic, "g", seen.handle); err != nil {
			t.Fatal(err)
		}
		go c.Run(context.Background())
		members = append(members, c)
	}
	leave := func(i int) {
		if err := members[i].Close(); err != nil && !errors.Is(err, pubsub.ErrClosed) {
			t.Errorf("closing a member: %v", err)
		}
		members = append(members[:i], members[i+1:]...)
	}
	t.Cleanup(func() {
		for len(members) > 0 {
			leave(0)
		}
	})
	join()

	done := make(chan struct{})
	go func() {
		defer close(done)
		publishAll(t, producer.Client, topic, 0, total, 8, 1500)
	}()
	joins, leaves := 0, 0
	for churning := true; churning; {
		select {
		case <-done:
			churning = false
		case <-time.After(700 * time.Millisecond):
			if len(members) < 2 || (len(members) < 4 && rand.IntN(2) == 0) {
				join()
				joins++
			} else {
				leave(rand.IntN(len(members)))
				leaves++
			}
		}
	}
	missing, dup := seen.waitAll(total, 2*time.Minute)
	t.Logf("%d joins, %d leaves while %d messages flowed; %d missing, %d duplicates", joins, leaves, total, missing, dup)
	if joins < 3 || leaves < 3 {
		t.Errorf("only %d joins and %d leaves: not churn", joins, leaves)
	}
	if missing > 0 {
		t.Fatalf("%d of %d messages lost", missing, total)
	}
}

// TestDeadLetterOutage: while the dead-letter topic refuses writes, a message whose
// handler fails is not acked: it is handled again and again, nothing behind it on
// its partition is handled, and nothing is dead-lettered. Once the topic takes
// writes again it is dead-lettered once and the partition flows on.
func TestDeadLetterOutage(t *testing.T) {
	cluster := kafkatest.New(t, kfake.GroupMinSessionTimeout(time.Second))
	fake := cluster.RequireFake(t)
	cfg := groupConfig(1)
	cfg.ProducerRetries = 2
	h := pubsubtest.NewOn(t, newTransport(t, cluster, cfg))
	topic := pubsub.NewTopic[order](kafkatest.Topic("dlqdown"))
	dlq := pubsub.DeadLetterTopicName(topic.Name(), "g")
	var badAttempts atomic.Int64
	seen := newTally()
	if err := pubsub.Subscribe(h.Client, topic, "g", func(ctx context.Context, m *pubsub.Message[order]) error {
		if m.Payload.ID == "bad" {
			badAttempts.Add(1)
			return pubsub.Permanent(errors.New("cannot bill order bad"))
		}
		return seen.handle(ctx, m)
	}); err != nil {
		t.Fatal(err)
	}
	outage := fake.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: dlq, Err: kerr.NotEnoughReplicas, Count: -1})
	ctx := context.Background()
	for _, id := range []string{"1", "bad", "2"} {
		if err := pubsub.Publish(ctx, h.Client, topic, order{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for badAttempts.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := badAttempts.Load(); n < 3 {
		t.Fatalf("the failing message was handled %d times during the outage; want it redelivered", n)
	}
	if seen.distinct() != 1 {
		t.Fatalf("during the outage %d messages were handled; want only the one before the failing message", seen.distinct())
	}
	if n := countRecords(t, cluster, dlq); n != 0 {
		t.Fatalf("the dead-letter topic holds %d records during its outage", n)
	}
	outage.Remove()
	if missing, _ := seen.waitAll(2, 30*time.Second); missing != 0 {
		t.Fatalf("after the outage %d messages are still not handled", missing)
	}
	letters := waitLetters(t, h.Client, topic.Name(), "g", 1)
	if letters[0].Reason == "" || !strings.Contains(letters[0].Reason, "cannot bill") {
		t.Fatalf("dead letter reason %q", letters[0].Reason)
	}
	t.Logf("handled %d times during the outage, then dead-lettered once", badAttempts.Load())
}

func waitLetters(t *testing.T, c *pubsub.Client, topic, group string, n int) []pubsub.DeadLetter {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		letters, err := c.DeadLetters(context.Background(), topic, group)
		if err != nil {
			t.Fatal(err)
		}
		if len(letters) >= n || time.Now().After(deadline) {
			if len(letters) != n {
				t.Fatalf("%d dead letters, want %d", len(letters), n)
			}
			return letters
		}
		time.Sleep(100 * time.Millisecond)
	}
}
