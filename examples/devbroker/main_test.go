package main

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/pubsubkit/pubsub"
)

// startBroker runs devbroker with args and returns the URL it printed and a function
// that stops it (also called when the test ends).
func startBroker(t *testing.T, args ...string) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, pw)
		pw.Close()
	}()
	var stopped bool
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("devbroker: %v", err)
		}
	}
	t.Cleanup(stop)
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the URL: %v", err)
	}
	go io.Copy(io.Discard, pr)
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "PUBSUB_URL=")
	if !ok {
		t.Fatalf("first line %q is not PUBSUB_URL=...", line)
	}
	return url, stop
}

// roundTrip publishes one message on url and waits for it in group.
func roundTrip(t *testing.T, url, group, payload string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pubsub.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	// One key: one partition, so the messages come back in publish order.
	topic := pubsub.NewTopic[string]("devbroker.notes", pubsub.WithKey(func(string) string { return "notes" }))
	got := make(chan string, 10)
	if err := pubsub.Subscribe(c, topic, group, func(_ context.Context, m *pubsub.Message[string]) error {
		got <- m.Payload
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	runDone := make(chan error, 1)
	go func() { runDone <- c.Run(ctx) }()
	if err := pubsub.Publish(ctx, c, topic, payload); err != nil {
		t.Fatal(err)
	}
	var seen []string
	for {
		select {
		case p := <-got:
			seen = append(seen, p)
			if p == payload {
				if err := c.Close(); err != nil {
					t.Fatal(err)
				}
				return seen
			}
		case <-ctx.Done():
			t.Fatalf("%q not consumed; saw %v", payload, seen)
		}
	}
}

func TestDevbrokerServesTheDefaultURL(t *testing.T) {
	url, _ := startBroker(t, "-port", "0")
	if n := strings.Count(url, ","); n != 2 {
		t.Fatalf("URL %q does not list three brokers", url)
	}
	// The default durability (replication factor 3, min.insync.replicas 2) works here.
	roundTrip(t, url, "g", "hello")
}

func TestDevbrokerKeepsDataAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	first, stop := startBroker(t, "-port", "0", "-data", dir)
	roundTrip(t, first, "g", "before restart")
	// Publish one more that group g never reads before the restart.
	roundTrip(t, first, "other", "unread by g")
	stop()
	// A new cluster, on new ports, from the same folder.
	second, _ := startBroker(t, "-port", "0", "-data", dir)
	seen := roundTrip(t, second, "g", "after restart")
	if len(seen) != 2 || seen[0] != "unread by g" {
		t.Fatalf("after a restart group g saw %v; want the message it had not read, then the new one", seen)
	}
}
