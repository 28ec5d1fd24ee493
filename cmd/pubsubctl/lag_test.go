package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/transport"
)

// TestLagOnKafka: lag reports the billing group's committed offsets and the ends, as
// the library does; an unknown topic is exit 3.
func TestLagOnKafka(t *testing.T) {
	c, env, topic := kafkaFixture(t, 4)
	stats := waitCommitted(t, c, topic, "billing")
	var end int64
	for _, p := range stats {
		end += p.End
	}
	var out struct {
		Lag        int64 `json:"lag"`
		Partitions []struct {
			Partition int32 `json:"partition"`
			End       int64 `json:"end"`
			Committed int64 `json:"committed"`
		} `json:"partitions"`
	}
	r := pubsubctl(t, env, "--json", "lag", topic, "billing").want(t, exitOK)
	if err := json.Unmarshal([]byte(r.out), &out); err != nil || len(out.Partitions) != len(stats) || out.Lag < 0 {
		t.Fatalf("--json lag: %v\n%s", err, r.out)
	}
	var gotEnd int64
	for _, p := range out.Partitions {
		gotEnd += p.End
	}
	if gotEnd != end || end != 4 {
		t.Fatalf("ends: pubsubctl %d, library %d, want 4 (four orders)", gotEnd, end)
	}
	r = pubsubctl(t, env, "lag", topic, "billing").want(t, exitOK)
	if !strings.Contains(r.out, "PARTITION") || !strings.Contains(r.out, "total") {
		t.Fatalf("lag table:\n%s", r.out)
	}
	pubsubctl(t, env, "lag", topic+".nope", "billing").want(t, exitNotFound)
}

// TestTailOnKafka: tail prints the messages published after it started, one JSON
// object per line, and stops after --count.
func TestTailOnKafka(t *testing.T) {
	c, env, topic := kafkaFixture(t, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "--json", "tail", topic, "--count", "2")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	// The tail starts at the end when it subscribes, which this test cannot see from
	// outside: publish until two lines arrive, and check that none is an order from
	// before the tail started.
	orders := pubsub.NewTopic[order](topic, pubsub.WithKey(func(o order) string { return o.ID }))
	var got []string
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for i := 100; len(got) < 2; i++ {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("tail ended after %d lines", len(got))
			}
			got = append(got, line)
		case <-tick.C:
			if err := pubsub.Publish(ctx, c, orders, order{ID: fmt.Sprintf("o-%d", i), Amount: 1}); err != nil {
				t.Fatal(err)
			}
		case <-ctx.Done():
			t.Fatalf("tail printed %d lines", len(got))
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("tail --count 2: %v", err)
	}
	for _, line := range got {
		var m struct {
			Key     string `json:"key"`
			Payload order  `json:"payload"`
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil || m.Payload.Amount != 1 || m.Key != m.Payload.ID {
			t.Fatalf("tail line %q: %v (want an order published after the tail started)", line, err)
		}
	}
}

// waitCommitted waits until group has committed on some partition of topic (a group
// that never did makes lag exit 3) and returns the library's lag then.
func waitCommitted(t *testing.T, c *pubsub.Client, topic, group string) []transport.PartitionStats {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		stats, err := c.Lag(context.Background(), topic, group)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range stats {
			if p.Committed >= 0 {
				return stats
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s has not committed on %s: %+v", group, topic, stats)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
