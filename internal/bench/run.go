package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/pubsubkit/pubsub/codec"
	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

var sizes = []int{100, 1024}

// Message counts per row, before -scale.
const (
	memoryN    = 50_000
	publish1N  = 5_000
	publish16N = 40_000
	consumeN   = 200_000
	boundSmall = 100_000
	boundLarge = 1_000_000
)

// Targets from the issue: SDK / reference msgs/s.
const (
	memoryTarget  = 0.8 // against raw Watermill on gochannel
	publishTarget = 0.8 // 16 callers, against sarama's AsyncProducer
	consumeTarget = 0.9 // against watermill-kafka's subscriber
	boundRSSMiB   = 150
	boundSpread   = 0.2
)

func runAll(scenarios []string, scale float64, prefetch int) error {
	want := map[string]bool{}
	for _, s := range scenarios {
		if s == "all" {
			for _, a := range []string{"memory", "publish", "consume", "bound"} {
				want[a] = true
			}
			continue
		}
		want[strings.TrimSpace(s)] = true
	}
	n := func(v int) int { return max(1, int(float64(v)*scale)) }

	var results []result
	run := func(s spec) error {
		s.Prefetch = prefetch
		fmt.Fprintf(os.Stderr, "running %s/%s %dB callers=%d n=%d\n", s.Scenario, s.Client, s.Size, s.Callers, s.N)
		r, err := measure(s)
		if err != nil {
			return err
		}
		results = append(results, r)
		return nil
	}

	if want["memory"] {
		for _, size := range sizes {
			for _, client := range []string{"sdk", "watermill"} {
				if err := run(spec{Scenario: "memory", Client: client, Size: size, Callers: 16, N: n(memoryN)}); err != nil {
					return err
				}
			}
		}
	}
	if !(want["publish"] || want["consume"] || want["bound"]) {
		printResults(results)
		return nil
	}

	b, err := startBroker()
	if err != nil {
		return err
	}
	defer b.stop()
	admin, err := kafka.New(context.Background(), kafka.Config{Brokers: b.addrs})
	if err != nil {
		return err
	}
	defer admin.Close()
	newTopic := func(name string) (string, error) {
		name = "bench." + name + "." + uuid.NewString()[:8]
		return name, admin.Provision(context.Background(), name)
	}

	if want["publish"] {
		for _, size := range sizes {
			for _, k := range []int{1, 16} {
				count := n(publish1N)
				if k == 16 {
					count = n(publish16N)
				}
				for _, client := range []string{"sdk", "watermill", "sarama", "franz-go"} {
					topic, err := newTopic("publish")
					if err != nil {
						return err
					}
					if err := run(spec{Scenario: "publish", Client: client, Size: size, Callers: k, N: count, Brokers: b.addrs, Topic: topic}); err != nil {
						return err
					}
				}
			}
		}
	}
	if want["consume"] {
		for _, size := range sizes {
			topic, err := newTopic("consume")
			if err != nil {
				return err
			}
			if err := prefill(admin, topic, size, n(consumeN)); err != nil {
				return err
			}
			for _, client := range []string{"sdk", "transport", "watermill", "sarama", "franz-go"} {
				if err := run(spec{Scenario: "consume", Client: client, Size: size, N: n(consumeN), Brokers: b.addrs,
					Topic: topic, Group: "bench-" + client}); err != nil {
					return err
				}
			}
		}
	}
	if want["bound"] {
		topic, err := newTopic("bound")
		if err != nil {
			return err
		}
		if err := prefill(admin, topic, 1024, n(boundLarge)); err != nil {
			return err
		}
		for i, count := range []int{n(boundSmall), n(boundLarge)} {
			if err := run(spec{Scenario: "bound", Client: "sdk", Size: 1024, N: count, Brokers: b.addrs,
				Topic: topic, Group: fmt.Sprintf("bound-%d", i)}); err != nil {
				return err
			}
		}
	}
	printResults(results)
	return nil
}

// prefill publishes n messages of size bytes to topic through the transport, in
// batches, as fast as it goes.
func prefill(tr *kafka.Transport, topic string, size, n int) error {
	start := time.Now()
	body := payload(size)
	const batch = 500
	var next atomic.Int64
	var first atomic.Pointer[error]
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				from := int(next.Add(batch)) - batch
				if from >= n || first.Load() != nil {
					return
				}
				msgs := make([]*message.Message, 0, batch)
				for range min(batch, n-from) {
					m := message.NewMessage(uuid.NewString(), body)
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
	fmt.Fprintf(os.Stderr, "prefilled %s with %d messages of %d B in %s\n", topic, n, size, time.Since(start).Round(time.Millisecond))
	return nil
}

// printResults prints the rows, then each SDK row's ratio to its references.
func printResults(rs []result) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(w, "scenario\tclient\tsize\tcallers\tmsgs\tmsgs/s\tp50 ms\tp99 ms\tallocs/msg\tpeak RSS MiB\t")
	for _, r := range rs {
		lat := func(v float64) string {
			if v == 0 {
				return "-"
			}
			return fmt.Sprintf("%.3f", v)
		}
		callers := "-"
		if r.Callers > 0 {
			callers = fmt.Sprint(r.Callers)
		}
		fmt.Fprintf(w, "%s\t%s\t%d B\t%s\t%d\t%.0f\t%s\t%s\t%.1f\t%.1f\t\n", r.Scenario, r.Client, r.Size, callers, r.N,
			r.MsgsPerSec, lat(r.P50), lat(r.P99), r.AllocsPerMsg, r.PeakRSSMiB)
	}
	w.Flush()
	fmt.Println()
	find := func(scenario, client string, size, callers int) *result {
		for i := range rs {
			r := &rs[i]
			if r.Scenario == scenario && r.Client == client && r.Size == size && r.Callers == callers {
				return r
			}
		}
		return nil
	}
	for _, r := range rs {
		if r.Client != "sdk" || r.Scenario == "bound" {
			continue
		}
		var parts []string
		for _, ref := range []string{"watermill", "sarama", "franz-go"} {
			o := find(r.Scenario, ref, r.Size, r.Callers)
			if o == nil {
				continue
			}
			ratio := r.MsgsPerSec / o.MsgsPerSec
			mark := ""
			switch {
			case r.Scenario == "memory" && ref == "watermill":
				mark = verdict(ratio, memoryTarget)
			case r.Scenario == "publish" && ref == "sarama" && r.Callers == 16:
				mark = verdict(ratio, publishTarget)
			case r.Scenario == "consume" && ref == "watermill":
				mark = verdict(ratio, consumeTarget)
			}
			parts = append(parts, fmt.Sprintf("%.2f× %s%s", ratio, ref, mark))
		}
		callers := ""
		if r.Callers > 0 {
			callers = fmt.Sprintf(", %d caller", r.Callers)
			if r.Callers > 1 {
				callers += "s"
			}
		}
		fmt.Printf("%s %d B%s: SDK = %s\n", r.Scenario, r.Size, callers, strings.Join(parts, ", "))
	}
	var bound []result
	for _, r := range rs {
		if r.Scenario == "bound" {
			bound = append(bound, r)
		}
	}
	if len(bound) == 2 {
		small, large := bound[0], bound[1]
		spread := large.PeakRSSMiB/small.PeakRSSMiB - 1
		ok := large.PeakRSSMiB <= boundRSSMiB && spread <= boundSpread
		fmt.Printf("bound: SDK consumer peak RSS %.1f MiB after %d messages, %.1f MiB after %d (%+.0f%%); target ≤ %d MiB and ≤ +%.0f%%: %s\n",
			small.PeakRSSMiB, small.N, large.PeakRSSMiB, large.N, spread*100, boundRSSMiB, boundSpread*100, map[bool]string{true: "met", false: "MISSED"}[ok])
	}
}

func verdict(ratio, target float64) string {
	if ratio >= target {
		return fmt.Sprintf(" (target ≥ %.1f: met)", target)
	}
	return fmt.Sprintf(" (target ≥ %.1f: MISSED)", target)
}
