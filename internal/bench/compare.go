package main

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// comparison is one ratio the issues set a target for (the consumer engine's: memory
// 2×, consume 1.2× at Concurrency 1 and 16 with 2× as the goal, PublishAsync and
// PublishBatch 0.5× raw franz-go with 0.8× as the goal, 16 callers 0.9×): the msgs/s of an SDK row over
// those of a reference row of the same scenario, size and callers. A target of 0
// reports the ratio without one (the ceiling).
type comparison struct {
	scenario    string
	client      string
	concurrency int
	ref         string
	target      float64
	batch       int // batch rows: WithBatch's max
}

var comparisons = []comparison{
	{"memory", "sdk", 0, "watermill", 2, 0},
	{"consume", "sdk", 1, "watermill", 1.2, 0},
	{"consume", "sdk", 16, "watermill", 1.2, 0},
	{"consume", "sdk", 1, "franz-go", 0, 0},
	{"consume", "sdk", 16, "franz-go", 0, 0},
	{"consume", "transport", 1, "watermill", 0, 0},
	{"slow", "sdk", slowConcurrency, "watermill", 20, 0},
	{"publish", "sdk", 0, "franz-go", 0.9, 0},
	{"publish", "sdk", 0, "franz-headers", 0, 0},
	{"async", "sdk", 0, "franz-go", 0.5, 0},
	{"async", "sdk", 0, "franz-headers", 0, 0},
	{"async", "sdk", 0, "sarama", 1.0, 0},
	{"batch", "sdk", 0, "franz-go", 0.5, 0},
	{"batch", "sdk", 0, "franz-headers", 0, 0},
	{"pgbatch", "batch", 0, "subscribe", pgBatchTarget, 100}, // one statement per batch against one per message
	{"pgbatch", "batch", 0, "subscribe", pgBatchTarget, 500},
}

// Targets that are not ratios.
const (
	memoryAllocs = 40 // allocations per message on the memory transport, tracing off
	boundRSSMiB  = 150
	boundSpread  = 0.2
)

func label(r result) string {
	if r.Batch > 0 {
		return fmt.Sprintf("%s %d", r.Client, r.Batch)
	}
	if r.Concurrency > 0 {
		return fmt.Sprintf("%s c%d", r.Client, r.Concurrency)
	}
	return r.Client
}

// printResults prints the rows, then every comparison and check with its verdict.
func printResults(out io.Writer, rs []result) {
	w := tabwriter.NewWriter(out, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(w, "scenario\tclient\tsize\tcallers\tmsgs\tmsgs/s\tp50 ms\tp99 ms\tallocs/msg\tCPU µs/msg\tpeak RSS MiB\tmax gap ms\t")
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
		fmt.Fprintf(w, "%s\t%s\t%d B\t%s\t%d\t%.0f\t%s\t%s\t%.1f\t%.2f\t%.1f\t%s\t\n", r.Scenario, label(r), r.Size, callers, r.N,
			r.MsgsPerSec, lat(r.P50), lat(r.P99), r.AllocsPerMsg, r.CPUPerMsg, r.PeakRSSMiB, lat(r.MaxGapMs))
	}
	w.Flush()
	fmt.Fprintln(out)

	w = tabwriter.NewWriter(out, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(w, "scenario\tsize\tcallers\tSDK / reference\tratio\ttarget\tverdict\t")
	for _, c := range comparisons {
		for _, r := range rs {
			if r.Scenario != c.scenario || r.Client != c.client || r.Concurrency != c.concurrency || r.Batch != c.batch {
				continue
			}
			ref := find(rs, c.scenario, c.ref, r.Size, r.Callers)
			if ref == nil {
				continue
			}
			ratio := r.MsgsPerSec / ref.MsgsPerSec
			target, verdict := "ceiling", "-"
			if c.target > 0 {
				target, verdict = fmt.Sprintf("≥ %.1f×", c.target), pass(ratio >= c.target)
			}
			fmt.Fprintf(w, "%s\t%d B\t%s\t%s / %s\t%.2f×\t%s\t%s\t\n", c.scenario, r.Size, dash(r.Callers), label(r), label(*ref), ratio, target, verdict)
		}
	}
	for _, r := range rs {
		switch {
		case r.Scenario == "memory" && r.Client == "sdk":
			fmt.Fprintf(w, "memory\t%d B\t%s\tSDK allocs/msg\t%.2f\t≤ %d\t%s\t\n", r.Size, dash(r.Callers), r.AllocsPerMsg, memoryAllocs, pass(r.AllocsPerMsg <= memoryAllocs))
		case r.Scenario == "slow":
			fmt.Fprintf(w, "slow\t%d B\t-\t%s key order errors\t%d\t0\t%s\t\n", r.Size, label(r), r.OrderErrors, pass(r.OrderErrors == 0))
		}
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
		fmt.Fprintf(w, "bound\t1024 B\t-\tpeak RSS after %d\t%.1f MiB\t≤ %d MiB\t%s\t\n", large.N, large.PeakRSSMiB, boundRSSMiB, pass(large.PeakRSSMiB <= boundRSSMiB))
		fmt.Fprintf(w, "bound\t1024 B\t-\tRSS %d / %d\t%+.0f%%\t≤ +%.0f%%\t%s\t\n", large.N, small.N, spread*100, boundSpread*100, pass(spread <= boundSpread))
	}
	w.Flush()
}

func find(rs []result, scenario, client string, size, callers int) *result {
	for i := range rs {
		r := &rs[i]
		if r.Scenario == scenario && r.Client == client && r.Size == size && r.Callers == callers {
			return r
		}
	}
	return nil
}

func dash(n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

func pass(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}
