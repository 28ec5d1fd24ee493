package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestMain lets the test binary play the broker and row roles of the child processes
// it starts, as the command does.
func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) != "" {
		if err := dispatch(plan{}); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestEveryScenario runs every row of every scenario with a thousandth of the
// messages, at 100 B, so that the tool keeps working: each row measures something, the slow
// rows keep each key's order, and every comparison and check is printed.
func TestEveryScenario(t *testing.T) {
	want, err := parseScenarios("all")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := runAll(want, []int{100}, 0.001, tuning{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]int{}
	for _, r := range rs {
		rows[r.Scenario]++
		if r.MsgsPerSec <= 0 || r.N <= 0 || r.PeakRSSMiB <= 0 {
			t.Errorf("%s/%s %d B measured nothing: %+v", r.Scenario, label(r), r.Size, r)
		}
		if r.OrderErrors != 0 {
			t.Errorf("%s/%s: %d messages out of their key's order", r.Scenario, label(r), r.OrderErrors)
		}
	}
	// Rows per scenario: its clients (× callers for memory).
	for scenario, n := range map[string]int{"memory": 4, "consume": 5, "slow": 2, "publish": 3, "async": 4, "batch": 3, "bound": 2, "pgbatch": 3} {
		if rows[scenario] != n {
			t.Errorf("scenario %s ran %d rows, want %d", scenario, rows[scenario], n)
		}
	}
	var out bytes.Buffer
	printResults(&out, rs)
	for _, c := range comparisons {
		line := fmt.Sprintf("%s / %s", label(result{spec: spec{Client: c.client, Concurrency: c.concurrency, Batch: c.batch}}), c.ref)
		if !strings.Contains(out.String(), line) {
			t.Errorf("the ratio table has no %s %q:\n%s", c.scenario, line, out.String())
		}
	}
	for _, check := range []string{"SDK allocs/msg", "key order errors", "peak RSS after"} {
		if !strings.Contains(out.String(), check) {
			t.Errorf("the table has no %q check:\n%s", check, out.String())
		}
	}
}

func TestBadFlags(t *testing.T) {
	if _, err := parseScenarios("memory,nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("parseScenarios(memory,nope) = %v, want an error naming nope", err)
	}
	for _, s := range []string{"", "abc", "8", "2000000"} {
		if _, err := parseSizes(s); err == nil {
			t.Errorf("parseSizes(%q) accepted", s)
		}
	}
	if sizes, err := parseSizes("100, 1024"); err != nil || len(sizes) != 2 || sizes[1] != 1024 {
		t.Errorf("parseSizes(100, 1024) = %v, %v", sizes, err)
	}
}
