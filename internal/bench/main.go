// Bench measures pubsubkit side by side with the clients it is built on, in one run
// on one machine, and prints a table with the ratios SDK / raw:
//
//	go run ./internal/bench -scenario all
//
// Scenarios (comma-separated, or all):
//
//   - memory: publish → handler on the memory transport with the full middleware
//     chain, against a raw Watermill router on gochannel doing the same work (JSON
//     encode, publish, route, JSON decode);
//   - publish: Kafka publishing with 1 and 16 concurrent callers, each waiting for its
//     own acknowledgement (acks=all, idempotent): the SDK, watermill-kafka's
//     publisher, sarama's AsyncProducer and franz-go;
//   - consume: consuming a pre-filled Kafka topic in a new group: the SDK,
//     watermill-kafka's subscriber, a raw sarama consumer group and franz-go;
//   - bound: the SDK consumer's peak RSS after 100,000 and after 1,000,000 messages of
//     1 KiB, which must stay at or under 150 MiB and within 20% of each other.
//
// Every row runs in a process of its own, so its peak RSS (from getrusage) is the
// client's alone; the Kafka-protocol brokers (franz-go's kfake, three of them) run in
// another. Message sizes are 100 B and 1 KiB. BENCHMARKS.md has the method and the
// figures of one run.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

func main() {
	role := flag.String("role", "", "internal: broker or row")
	spec := flag.String("spec", "", "internal: the row to run, as JSON")
	scenarios := flag.String("scenario", "all", "memory, publish, consume, bound, or all (comma-separated)")
	scale := flag.Float64("scale", 1, "multiply every message count by this (0.1 for a quick look)")
	prefetch := flag.Int("prefetch", 0, "kafka.Config.Prefetch of the SDK consumers (0: the default)")
	flag.Parse()

	var err error
	switch *role {
	case "broker":
		err = runBroker()
	case "row":
		err = runRow(*spec)
	case "":
		err = runAll(strings.Split(*scenarios, ","), *scale, *prefetch)
	default:
		err = fmt.Errorf("unknown -role %q", *role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
