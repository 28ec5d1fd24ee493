// Bench measures pubsubkit side by side with the clients it is built on, in one run
// on one machine and against one broker process, and prints a table of the rows and
// one of the ratios SDK / reference with their targets:
//
//	go run ./internal/bench -scenario all
//
// Scenarios (comma-separated, or all):
//
//   - memory: publish → handler on the memory transport with the full middleware
//     chain, against a raw Watermill router on gochannel doing the same work (JSON
//     encode, publish, route, JSON decode), with 1 and 16 publishing goroutines;
//   - consume: consuming a pre-filled Kafka topic in a new group with an empty
//     handler: the SDK with Concurrency 1 and 16, its Kafka transport alone,
//     watermill-kafka's subscriber and franz-go (the ceiling);
//   - slow: a handler that sleeps 5 ms on a topic of 3 partitions and 1,000 keys: the
//     SDK with Concurrency 32 against a Watermill router on watermill-kafka's
//     subscriber, both checking each key's order;
//   - publish: 16 callers, each waiting for its acknowledgement: the SDK's Publish
//     against franz-go's ProduceSync;
//   - async: one goroutine publishing without waiting: the SDK's PublishAsync against
//     franz-go's Produce and sarama's AsyncProducer;
//   - batch: batches of 1,000: the SDK's PublishBatch against franz-go's ProduceSync
//     of 1,000 records;
//   - publish, async and batch also run franz-headers: raw franz-go writing the
//     record the SDK writes (its five headers, a new id and time each), the ceiling
//     for the SDK's records;
//   - bound: the SDK consumer's peak RSS after 100,000 and after 1,000,000 messages of
//     1 KiB;
//   - pgbatch: a handler storing each message in PostgreSQL (one INSERT with an
//     inbox-style dedupe) on the memory transport: Subscribe, one statement per
//     message, against SubscribeBatch with batches of 100 and 500, one statement per
//     batch (the server: $PUBSUB_TEST_POSTGRES or 127.0.0.1:5432, database test).
//
// Every row runs in a process of its own, so its peak RSS (from getrusage) and its
// allocations are the client's alone; the Kafka-protocol brokers (franz-go's kfake,
// three of them) run in another, shared by every Kafka row. The pgbatch rows' CPU and
// allocations are the client's (PostgreSQL's server runs apart). BENCHMARKS.md has the
// method and the figures of one run.
package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Environment of the child processes: the role (broker or row) and the row's spec.
const (
	roleEnv = "BENCH_ROLE"
	specEnv = "BENCH_SPEC"
)

func main() {
	scenarios := flag.String("scenario", "all", "memory, consume, slow, publish, async, batch, bound, pgbatch, or all (comma-separated)")
	scale := flag.Float64("scale", 1, "multiply every message count by this (0.1 for a quick look)")
	sizes := flag.String("size", "100,1024", "payload sizes in bytes (comma-separated)")
	prefetch := flag.Int("prefetch", 0, "kafka.Config.Prefetch of the SDK consumers (0: the default)")
	fetchMaxWait := flag.Duration("fetch-max-wait", 0, "diagnostic: franz-go FetchMaxWait of the SDK consumers, through kafka.Config.ClientOptions (0: the transport's default)")
	retained := flag.Int64("memory-retained-bytes", 0, "diagnostic: memory.Config.MaxRetainedBytes of the SDK's memory rows (0: the transport's default)")
	clients := flag.String("client", "", "run only these clients (comma-separated, such as sdk,watermill); default all")
	flag.Parse()
	if err := dispatch(plan{scenarios: *scenarios, scale: *scale, sizes: *sizes, prefetch: *prefetch, clients: *clients, fetchMaxWait: *fetchMaxWait, retained: *retained}); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// plan is what the command line asks for.
type plan struct {
	scenarios string
	scale     float64
	sizes     string
	prefetch  int
	clients   string // "" for all
	// fetchMaxWait, when not 0, is the SDK consumers' franz-go FetchMaxWait.
	fetchMaxWait time.Duration
	// retained, when not 0, is the SDK memory rows' MaxRetainedBytes.
	retained int64
}

// dispatch runs this process's role: the broker, one row, or (no role) the whole plan.
func dispatch(p plan) error {
	switch role := os.Getenv(roleEnv); role {
	case "broker":
		return runBroker()
	case "row":
		return runRow(os.Getenv(specEnv))
	case "":
		sizes, err := parseSizes(p.sizes)
		if err != nil {
			return err
		}
		if p.scale <= 0 {
			return fmt.Errorf("-scale %v must be above 0", p.scale)
		}
		want, err := parseScenarios(p.scenarios)
		if err != nil {
			return err
		}
		var only map[string]bool
		if p.clients != "" {
			only = map[string]bool{}
			for _, c := range strings.Split(p.clients, ",") {
				only[strings.TrimSpace(c)] = true
			}
		}
		rs, err := runAll(want, sizes, p.scale, tuning{prefetch: p.prefetch, fetchMaxWait: p.fetchMaxWait, retained: p.retained}, only)
		if len(rs) > 0 {
			printResults(os.Stdout, rs)
		}
		return err
	default:
		return fmt.Errorf("unknown %s %q", roleEnv, role)
	}
}

var allScenarios = []string{"memory", "consume", "slow", "publish", "async", "batch", "bound", "pgbatch"}

func parseScenarios(s string) (map[string]bool, error) {
	want := map[string]bool{}
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		switch {
		case name == "all":
			for _, a := range allScenarios {
				want[a] = true
			}
		case slices.Contains(allScenarios, name):
			want[name] = true
		default:
			return nil, fmt.Errorf("unknown scenario %q (want %s or all)", name, strings.Join(allScenarios, ", "))
		}
	}
	return want, nil
}

func parseSizes(s string) ([]int, error) {
	var sizes []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 16 || n > 1<<20 {
			return nil, fmt.Errorf("-size %q: each size must be a number of bytes from 16 to 1048576", f)
		}
		sizes = append(sizes, n)
	}
	return sizes, nil
}
