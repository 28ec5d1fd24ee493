package kafka_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

// TestProducerAuditCases are the cases that made the first producer write a record
// twice or reorder a key: one partition's produce request is written by the broker
// but answered REQUEST_TIMED_OUT (so the producer must resend it), while the other
// partition's request is refused with UNKNOWN_PRODUCER_ID or
// OUT_OF_ORDER_SEQUENCE_NUMBER (so the producer must reset its sequence state).
// Two keys, one per partition, publish 300 messages each in order through
// PublishAsync, in rounds so that the faults hit requests in flight. Every message
// whose done got nil is in the log exactly once, no message is in it twice, and each
// key's log is in publish order.
func TestProducerAuditCases(t *testing.T) {
	for _, reset := range []*kerr.Error{kerr.UnknownProducerID, kerr.OutOfOrderSequenceNumber} {
		t.Run(reset.Message, func(t *testing.T) {
			t.Parallel()
			cluster := kafkatest.New(t)
			fake := cluster.RequireFake(t)
			topic := kafkatest.Topic("audit")
			tr := newTransport(t, cluster, kafka.Config{Partitions: 2, RetryBackoff: 20 * time.Millisecond})
			keys := [2]string{}
			for i := 0; keys[0] == "" || keys[1] == ""; i++ {
				k := "key-" + strconv.Itoa(i)
				if p := javaPartition(k, 2); keys[p] == "" {
					keys[p] = k
				}
			}
			warm := keyed(2, func(i int) string { return keys[i] })
			for _, m := range warm {
				m.Payload = []byte(m.Metadata.Get(metadata.Key) + "/warm")
			}
			if err := tr.Publish(topic, warm...); err != nil {
				t.Fatal(err)
			}

			const perKey, rounds = 300, 6
			var mu sync.Mutex
			stored := map[string]bool{}
			var failures []string
			var calls sync.WaitGroup
			var handles []*kfake.FaultHandle
			for round := range rounds {
				// Each round's first requests meet the faults: partition 0's is written
				// and answered with a timeout, partition 1's refused with reset.
				handles = append(handles,
					fake.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: topic, Partitions: []int32{0}, Err: kerr.RequestTimedOut}),
					fake.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: topic, Partitions: []int32{1}, Err: reset}))
				for i := round * perKey / rounds; i < (round+1)*perKey/rounds; i++ {
					for _, k := range keys {
						v := k + "/" + strconv.Itoa(i)
						msg := message.NewMessage(v, []byte(v))
						msg.Metadata.Set(metadata.Key, k)
						calls.Add(1)
						tr.PublishAsync(context.Background(), topic, msg, func(err error) {
							mu.Lock()
							if err == nil {
								stored[v] = true
							} else {
								failures = append(failures, v+": "+err.Error())
							}
							mu.Unlock()
							calls.Done()
						})
					}
				}
				time.Sleep(50 * time.Millisecond)
			}
			waited := make(chan struct{})
			go func() { calls.Wait(); close(waited) }()
			select {
			case <-waited:
			case <-time.After(60 * time.Second):
				t.Fatal("not every PublishAsync was done within 60s")
			}

			hits := 0
			for _, h := range handles {
				hits += h.Hits()
			}
			if hits < rounds {
				t.Errorf("the faults answered %d produce requests, want at least %d: the scenario did not happen", hits, rounds)
			}
			logs := readKeyLogs(t, cluster, topic, 2+2*perKey-len(failures))
			lost, duplicated, disordered := 0, 0, 0
			for _, k := range keys {
				seen := map[string]bool{}
				last := -1
				for _, v := range logs[k] {
					if seen[v] {
						duplicated++
						continue
					}
					seen[v] = true
					if _, s, _ := strings.Cut(v, "/"); s != "warm" {
						n, _ := strconv.Atoi(s)
						if n < last {
							disordered++
						}
						last = n
					}
				}
				for i := range perKey {
					if v := k + "/" + strconv.Itoa(i); stored[v] && !seen[v] {
						lost++
					}
				}
			}
			if lost+duplicated+disordered > 0 {
				t.Errorf("%d lost, %d duplicated, %d out of their key's order; logs %v", lost, duplicated, disordered, logs)
			}
			t.Logf("%d faulted requests; %d stored, %d failed (%v), 0 lost, 0 duplicated, key order kept", hits, len(stored), len(failures), first(failures))
		})
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return s[0]
}

// readKeyLogs reads at least n records of topic with a plain franz-go consumer (and
// whatever else arrives within half a second after) and returns each key's values in
// log order.
func readKeyLogs(t *testing.T, cluster *kafkatest.Cluster, topic string, n int) map[string][]string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.Addrs...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	logs := map[string][]string{}
	count := 0
	deadline := time.Now().Add(20 * time.Second)
	for count < n && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			logs[string(r.Key)] = append(logs[string(r.Key)], string(r.Value))
			count++
		})
		cancel()
	}
	if count < n {
		t.Fatalf("read %d of at least %d records of %s", count, n, topic)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { logs[string(r.Key)] = append(logs[string(r.Key)], string(r.Value)) })
	return logs
}
