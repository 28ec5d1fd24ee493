package reliability_test

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/internal/reliability"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

// retriableProduceErrors are answers a broker gives during leader changes and
// overload, which the producer must retry. kfake writes the batch before it answers
// REQUEST_TIMED_OUT and NOT_ENOUGH_REPLICAS_AFTER_APPEND, so a resend that is not
// idempotent would store it twice.
var retriableProduceErrors = []*kerr.Error{
	kerr.NotLeaderForPartition, kerr.LeaderNotAvailable, kerr.RequestTimedOut,
	kerr.NotEnoughReplicas, kerr.NotEnoughReplicasAfterAppend,
}

// TestAsyncPublishUnderFaults: 200,000 messages go out through PublishAsync, from
// four goroutines that each publish their keys' messages in order, while about one
// produce request in a hundred fails with a retriable error and the partition leaders
// move every 100 ms. Every done is called once; every message whose done got nil is
// in the topic exactly once (no write is duplicated), none is missing, and each key's
// messages are stored in publish order.
func TestAsyncPublishUnderFaults(t *testing.T) {
	total := 200_000
	if testing.Short() {
		total = 20_000
	}
	const publishers, keys = 4, 40
	cluster := kafkatest.New(t)
	fake := cluster.RequireFake(t)
	tr, err := kafka.New(context.Background(), kafka.Config{Brokers: cluster.Addrs, Partitions: 6, RetryBackoff: 20 * time.Millisecond, ProducerRetries: 1000})
	if err != nil {
		t.Fatal(err)
	}
	c, err := pubsub.New(tr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	topic := reliability.Topic(kafkatest.Topic("async"))
	if err := tr.Provision(context.Background(), topic.Name()); err != nil {
		t.Fatal(err)
	}

	var faulted atomic.Int64
	for _, e := range retriableProduceErrors {
		fake.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: e, Count: -1, When: func(kmsg.Request) bool {
			if rand.IntN(100*len(retriableProduceErrors)) != 0 {
				return false
			}
			faulted.Add(1)
			return true
		}})
	}
	stop := make(chan struct{})
	var moves atomic.Int64
	var chaos sync.WaitGroup
	chaos.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				fake.ShufflePartitionLeaders()
				moves.Add(1)
			}
		}
	})

	var ok, failed atomic.Int64
	var stored sync.Map // reliability.Record{Key, Seq} → true, for each done(nil)
	var calls sync.WaitGroup
	calls.Add(total)
	start := time.Now()
	var pubs sync.WaitGroup
	perPublisher := total / publishers
	for p := range publishers {
		pubs.Go(func() {
			for i := range perPublisher {
				k := p + publishers*(i%(keys/publishers)) // this goroutine's keys only
				r := reliability.Record{Key: reliability.KeyOf(k), Seq: i / (keys / publishers)}
				pubsub.PublishAsync(context.Background(), c, topic, r, func(err error) {
					if err == nil {
						ok.Add(1)
						stored.Store(r, true)
					} else {
						failed.Add(1)
						t.Logf("%s/%d: %v", r.Key, r.Seq, err)
					}
					calls.Done()
				})
			}
		})
	}
	pubs.Wait()
	calls.Wait()
	took := time.Since(start)
	close(stop)
	chaos.Wait()
	t.Logf("%d messages in %s (%.0f msgs/s): %d stored, %d failed; %d produce requests faulted, %d leader moves",
		total, took.Round(time.Millisecond), float64(total)/took.Seconds(), ok.Load(), failed.Load(), faulted.Load(), moves.Load())
	if faulted.Load() == 0 || moves.Load() == 0 {
		t.Fatal("no fault was injected: the scenario tested nothing")
	}
	if failed.Load() != 0 {
		t.Errorf("%d messages failed: retriable faults and leader moves must be ridden out", failed.Load())
	}

	// Read the topic itself, not through a group: what is stored, how often, in what order.
	counts, disorder := readTopic(t, cluster.Addrs, topic.Name(), int(ok.Load()))
	dup, missing := 0, 0
	stored.Range(func(k, _ any) bool {
		switch n := counts[k.(reliability.Record)]; {
		case n == 0:
			missing++
		case n > 1:
			dup += n - 1
		}
		return true
	})
	t.Logf("in the topic: %d distinct messages, %d duplicates, %d missing, %d out of key order", len(counts), dup, missing, disorder)
	if missing != 0 || dup != 0 || disorder != 0 {
		t.Errorf("%d messages acknowledged but missing, %d written twice, %d out of key order", missing, dup, disorder)
	}
}

// readTopic reads every record of topic from the oldest, until want distinct ones,
// and counts each record and the records that came after a later one of their key.
func readTopic(t *testing.T, brokers []string, topic string, want int) (map[reliability.Record]int, int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	counts := map[reliability.Record]int{}
	last := map[string]int{}
	disorder := 0
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	idle := time.Now()
	for len(counts) < want || time.Since(idle) < 500*time.Millisecond {
		pollCtx, pollCancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fetches := cl.PollFetches(pollCtx)
		pollCancel()
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records in 2 minutes", len(counts), want)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			idle = time.Now()
			var rec reliability.Record
			if err := json.Unmarshal(r.Value, &rec); err != nil {
				t.Fatalf("record %s/%d/%d: %v", r.Topic, r.Partition, r.Offset, err)
			}
			rec.Pad = ""
			counts[rec]++
			if prev, seen := last[rec.Key]; seen && rec.Seq < prev {
				disorder++
			}
			last[rec.Key] = max(last[rec.Key], rec.Seq)
		})
	}
	return counts, disorder
}
