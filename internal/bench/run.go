package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/pubsubkit/pubsub/codec"
	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

// Message counts per row, before -scale.
const (
	memoryN        = 50_000
	consumeN       = 200_000
	slowSDKN       = 30_000
	slowWatermillN = 3_000 // about 5 s at 3 partitions × one 5 ms message at a time
	publishN       = 40_000
	publishCallers = 16
	asyncN         = 200_000
	batchN         = 200_000
	boundSmall     = 100_000
	boundLarge     = 1_000_000
	pgbatchN       = 20_000
)

// tuning is the SDK transport's configuration the command line changes.
type tuning struct {
	prefetch     int
	fetchMaxWait time.Duration
	retained     int64
}

// runAll runs the rows of the wanted scenarios, each in a child process, and returns
// their results: those measured so far when a row fails.
// only, when not nil, names the clients to run.
func runAll(want map[string]bool, sizes []int, scale float64, tune tuning, only map[string]bool) ([]result, error) {
	n := func(v int) int { return max(1, int(float64(v)*scale)) }
	var results []result
	run := func(s spec) error {
		if only != nil && !only[s.Client] {
			return nil
		}
		s.Prefetch, s.FetchMaxWait, s.Retained = tune.prefetch, tune.fetchMaxWait, tune.retained
		fmt.Fprintf(os.Stderr, "running %s/%s %d B callers=%d concurrency=%d batch=%d n=%d\n", s.Scenario, s.Client, s.Size, s.Callers, s.Concurrency, s.Batch, s.N)
		r, err := measure(s)
		if err != nil {
			return err
		}
		results = append(results, r)
		return nil
	}

	if want["memory"] {
		for _, size := range sizes {
			for _, k := range []int{1, 16} {
				for _, client := range []string{"sdk", "watermill"} {
					if err := run(spec{Scenario: "memory", Client: client, Size: size, Callers: k, N: n(memoryN)}); err != nil {
						return results, err
					}
				}
			}
		}
	}
	if want["pgbatch"] {
		if err := run(spec{Scenario: "pgbatch", Client: "subscribe", Size: 32, N: n(pgbatchN)}); err != nil {
			return results, err
		}
		for _, size := range pgBatches {
			if err := run(spec{Scenario: "pgbatch", Client: "batch", Batch: size, Size: 32, N: n(pgbatchN)}); err != nil {
				return results, err
			}
		}
	}
	kafkaScenarios := []string{"consume", "slow", "publish", "async", "batch", "bound"}
	needKafka := false
	for _, sc := range kafkaScenarios {
		needKafka = needKafka || want[sc]
	}
	if !needKafka {
		return results, nil
	}

	b, err := startBroker()
	if err != nil {
		return results, err
	}
	defer b.stop()
	admin, err := kafka.New(context.Background(), kafka.Config{Brokers: b.addrs})
	if err != nil {
		return results, err
	}
	defer admin.Close()
	newTopic := func(name string) (string, error) {
		name = "bench." + name + "." + uuid.NewString()[:8]
		return name, admin.Provision(context.Background(), name)
	}
	// publishing runs every client of a publishing scenario on a topic of its own.
	publishing := func(scenario string, count, callers int, clients ...string) error {
		for _, size := range sizes {
			for _, client := range clients {
				topic, err := newTopic(scenario)
				if err != nil {
					return err
				}
				if err := run(spec{Scenario: scenario, Client: client, Size: size, Callers: callers, N: count, Brokers: b.addrs, Topic: topic}); err != nil {
					return err
				}
			}
		}
		return nil
	}

	if want["consume"] {
		for _, size := range sizes {
			topic, err := newTopic("consume")
			if err != nil {
				return results, err
			}
			if err := prefill(admin, topic, n(consumeN), 8, func(int) *message.Message { return message.NewMessage(uuid.NewString(), payload(size)) }); err != nil {
				return results, err
			}
			for _, r := range []struct {
				client      string
				concurrency int
			}{{"sdk", 1}, {"sdk", 16}, {"transport", 1}, {"watermill", 0}, {"franz-go", 0}} {
				if err := run(spec{Scenario: "consume", Client: r.client, Concurrency: r.concurrency, Size: size, N: n(consumeN), Brokers: b.addrs,
					Topic: topic, Group: fmt.Sprintf("bench-%s-%d", r.client, r.concurrency)}); err != nil {
					return results, err
				}
			}
		}
	}
	if want["slow"] {
		const size = 100
		topic, err := newTopic("slow")
		if err != nil {
			return results, err
		}
		if err := prefill(admin, topic, n(slowSDKN), 1, func(i int) *message.Message {
			m := message.NewMessage(uuid.NewString(), slowPayload(i, size))
			key, _ := slowKey(i)
			m.Metadata.Set(metadata.Key, key)
			return m
		}); err != nil {
			return results, err
		}
		if err := run(spec{Scenario: "slow", Client: "sdk", Concurrency: slowConcurrency, Size: size, N: n(slowSDKN), Brokers: b.addrs, Topic: topic, Group: "slow-sdk"}); err != nil {
			return results, err
		}
		if err := run(spec{Scenario: "slow", Client: "watermill", Size: size, N: n(slowWatermillN), Brokers: b.addrs, Topic: topic, Group: "slow-watermill"}); err != nil {
			return results, err
		}
	}
	if want["publish"] {
		if err := publishing("publish", n(publishN), publishCallers, "sdk", "franz-go", "franz-headers"); err != nil {
			return results, err
		}
	}
	if want["async"] {
		if err := publishing("async", n(asyncN), 0, "sdk", "franz-go", "franz-headers", "sarama"); err != nil {
			return results, err
		}
	}
	if want["batch"] {
		if err := publishing("batch", n(batchN), 0, "sdk", "franz-go", "franz-headers"); err != nil {
			return results, err
		}
	}
	if want["bound"] {
		topic, err := newTopic("bound")
		if err != nil {
			return results, err
		}
		if err := prefill(admin, topic, n(boundLarge), 8, func(int) *message.Message { return message.NewMessage(uuid.NewString(), payload(1024)) }); err != nil {
			return results, err
		}
		for i, count := range []int{n(boundSmall), n(boundLarge)} {
			if err := run(spec{Scenario: "bound", Client: "sdk", Size: 1024, N: count, Brokers: b.addrs,
				Topic: topic, Group: fmt.Sprintf("bound-%d", i)}); err != nil {
				return results, err
			}
		}
	}
	return results, nil
}

// prefill publishes gen(0) to gen(n-1) to topic through the transport, in batches
// from workers goroutines, as fast as it goes. With one worker the messages are
// stored in the order of i, so each key's messages keep their order.
func prefill(tr *kafka.Transport, topic string, n, workers int, gen func(i int) *message.Message) error {
	start := time.Now()
	const batch = 1000
	var next atomic.Int64
	var first atomic.Pointer[error]
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				from := int(next.Add(batch)) - batch
				if from >= n || first.Load() != nil {
					return
				}
				msgs := make([]*message.Message, 0, batch)
				for i := from; i < min(from+batch, n); i++ {
					m := gen(i)
					m.Metadata.Set(metadata.ContentType, codec.Raw.ContentType())
					msgs = append(msgs, m)
				}
				if err := tr.Publish(topic, msgs...); err != nil {
					first.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := first.Load(); err != nil {
		return *err
	}
	fmt.Fprintf(os.Stderr, "prefilled %s with %d messages in %s\n", topic, n, time.Since(start).Round(time.Millisecond))
	return nil
}
