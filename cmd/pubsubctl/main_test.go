package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/internal/testenv"
)

// binary is pubsubctl built once for the tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pubsubctl-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "pubsubctl")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building pubsubctl: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is one run of the binary.
type result struct {
	code        int
	out, errOut string
}

func pubsubctl(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	code := 0
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("running pubsubctl %v: %v", args, err)
	}
	return result{code, out.String(), errOut.String()}
}

func (r result) want(t *testing.T, code int, args ...string) result {
	t.Helper()
	if r.code != code {
		t.Fatalf("pubsubctl %v: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", args, r.code, code, r.out, r.errOut)
	}
	return r
}

func TestUsageErrors(t *testing.T) {
	noURL := []string{"PUBSUB_URL="}
	for _, args := range [][]string{
		{"dlq", "list", "orders"},                // a missing argument
		{"dlq", "list", "orders", "g", "--nope"}, // an unknown flag
		{"dlq", "frobnicate"},
		{"dlq", "list", "orders", "g"},                              // no URL
		{"--url", "memory://", "dlq", "list", "orders", "g"},        // in-process only
		{"--url", "kafak://x:1", "dlq", "list", "orders", "g"},      // unknown scheme
		{"--url", "kafka://127.0.0.1:1", "dlq", "replay", "o", "g"}, // no selector
		{"--url", "kafka://127.0.0.1:1", "dlq", "list", "o", "g", "--since", "yesterday"},
		{"--url", "kafka://ops:hunter2@127.0.0.1:1?bogus=1", "lag", "o", "g"}, // an unknown parameter
	} {
		r := pubsubctl(t, noURL, args...).want(t, exitUsage, args...)
		if r.errOut == "" || r.out != "" {
			t.Errorf("pubsubctl %v: stdout %q, stderr %q: want the error on stderr only", args, r.out, r.errOut)
		}
		if strings.Contains(r.errOut, "hunter2") {
			t.Errorf("pubsubctl %v shows the password: %s", args, r.errOut)
		}
	}
}

type order struct {
	ID     string `json:"id"`
	Amount int    `json:"amount"`
}

// kafkaFixture runs a service on a fresh in-process Kafka cluster whose billing
// group dead-letters every order over 100 (after no retry) and negative ones
// (permanent); it returns the client, the environment pointing pubsubctl at the
// cluster, and the topic.
func kafkaFixture(t *testing.T, n int) (*pubsub.Client, []string, string) {
	c, url := kafkaClient(t)
	topic := pubsub.NewTopic[order](kafkatest.Topic("orders"), pubsub.WithKey(func(o order) string { return o.ID }))
	err := pubsub.Subscribe(c, topic, "billing", func(_ context.Context, m *pubsub.Message[order]) error {
		switch a := m.Payload.Amount; {
		case a < 0:
			return pubsub.Permanent(fmt.Errorf("order %s: negative amount", m.Payload.ID))
		case a > 100:
			return fmt.Errorf("card declined: over the limit by %d", a-100)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	runClient(t, c)
	for i := range n {
		amount := 150 + i
		if i%4 == 3 {
			amount = -i
		}
		if err := pubsub.Publish(context.Background(), c, topic, order{ID: fmt.Sprintf("o-%d", i), Amount: amount},
			pubsub.WithCorrelationID(fmt.Sprintf("cid-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	waitPending(t, c, topic.Name(), n)
	return c, []string{"PUBSUB_URL=" + url}, topic.Name()
}

// kafkaClient opens a client on a fresh in-process Kafka cluster, closed when the
// test ends, and returns it with the cluster's URL.
func kafkaClient(t *testing.T) (*pubsub.Client, string) {
	url := kafkatest.New(t).URL("")
	c, err := pubsub.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, url
}

// runClient runs c until the test ends and waits until every subscription consumes.
func runClient(t *testing.T, c *pubsub.Client) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-c.Running()
}

func waitPending(t *testing.T, c *pubsub.Client, topic string, n int) []pubsub.DeadLetter {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		letters, err := c.DeadLetters(context.Background(), topic, "billing")
		if err != nil {
			t.Fatal(err)
		}
		if len(letters) == n {
			return letters
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d pending dead letters, want %d", len(letters), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDeadLettersOnKafka lists, shows, counts, replays and discards dead letters
// with the binary against a Kafka cluster, checking each through the library.
func TestDeadLettersOnKafka(t *testing.T) {
	c, env, topic := kafkaFixture(t, 8)
	ctx := context.Background()

	r := pubsubctl(t, env, "dlq", "list", topic, "billing").want(t, exitOK)
	letters, err := c.DeadLetters(ctx, topic, "billing")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range letters {
		if !strings.Contains(r.out, l.ID) {
			t.Fatalf("list lacks %s:\n%s", l.ID, r.out)
		}
	}
	if !strings.HasPrefix(r.out, "ID ") || !strings.Contains(r.out, "[permanent] order o-3: negative amount") {
		t.Fatalf("list table:\n%s", r.out)
	}

	var listed []letterJSON
	r = pubsubctl(t, env, "--json", "dlq", "list", topic, "billing", "--reason", "NEGATIVE").want(t, exitOK)
	if err := json.Unmarshal([]byte(r.out), &listed); err != nil || len(listed) != 2 || !listed[0].Permanent || listed[0].Payload == nil {
		t.Fatalf("--json list --reason negative: %v\n%s", err, r.out)
	}

	var groups []struct {
		Reason string `json:"reason"`
		Count  int    `json:"count"`
	}
	r = pubsubctl(t, env, "--json", "dlq", "stats", topic, "billing").want(t, exitOK)
	if err := json.Unmarshal([]byte(r.out), &groups); err != nil || len(groups) != 2 ||
		groups[0].Reason != "card declined: over the limit by <n>" || groups[0].Count != 6 {
		t.Fatalf("--json stats: %v\n%s", err, r.out)
	}
	r = pubsubctl(t, env, "dlq", "stats", topic, "billing").want(t, exitOK)
	if !strings.Contains(r.out, "6      ") || !strings.Contains(r.out, "card declined: over the limit by <n>") {
		t.Fatalf("stats table:\n%s", r.out)
	}

	var first pubsub.DeadLetter
	for _, l := range letters {
		if l.Key == "o-0" {
			first = l
		}
	}
	r = pubsubctl(t, env, "dlq", "show", topic, "billing", first.ID).want(t, exitOK)
	if !strings.Contains(r.out, `"amount": 150`) || !strings.Contains(r.out, "card declined: over the limit by 50") || !strings.Contains(r.out, "pubsub_dlq_reason") {
		t.Fatalf("show:\n%s", r.out)
	}
	pubsubctl(t, env, "dlq", "show", topic, "billing", "no-such-id").want(t, exitNotFound)
	pubsubctl(t, env, "dlq", "list", topic, "biling").want(t, exitNotFound) // a misspelt group
	pubsubctl(t, env, "dlq", "replay", topic, "billing", "--id", "no-such-id").want(t, exitNotFound)

	// An edited payload that is not JSON is refused; a good one is replayed and handled.
	bad := filepath.Join(t.TempDir(), "bad.json")
	good := filepath.Join(t.TempDir(), "good.json")
	os.WriteFile(bad, []byte(`{"id": "o-0", "amount": `), 0o644)
	os.WriteFile(good, []byte(`{"id": "o-0", "amount": 50}`), 0o644)
	pubsubctl(t, env, "dlq", "replay", topic, "billing", "--id", first.ID, "--payload-file", bad).want(t, exitUsage)
	r = pubsubctl(t, env, "dlq", "replay", topic, "billing", "--id", first.ID, "--payload-file", good, "--by", "ci", "--why", "amount fixed").want(t, exitOK)
	if !strings.Contains(r.out, "replayed 1 dead letter(s)") {
		t.Fatalf("replay output: %q", r.out)
	}
	waitPending(t, c, topic, 7)

	r = pubsubctl(t, env, "--json", "dlq", "discard", topic, "billing", "--error", "order o-<n>: negative amount", "--by", "ci").want(t, exitOK)
	var discarded struct {
		Discarded int `json:"discarded"`
	}
	if err := json.Unmarshal([]byte(r.out), &discarded); err != nil || discarded.Discarded != 2 {
		t.Fatalf("--json discard --error: %v\n%s", err, r.out)
	}
	waitPending(t, c, topic, 5)
	resolved, err := c.Resolved(ctx, topic, "billing")
	if err != nil {
		t.Fatal(err)
	}
	if len(resolved) != 3 || !resolved[0].Replayed || resolved[0].By != "ci" || resolved[0].Note != "amount fixed (replayed with an edited payload)" ||
		resolved[1].Replayed || resolved[2].By != "ci" {
		t.Fatalf("resolutions: %+v", resolved)
	}
	if strings.Contains(r.errOut, "\r") {
		t.Fatalf("a progress bar was drawn on a stderr that is not a terminal: %q", r.errOut)
	}

	// On a terminal (script(1) gives the command one), discard draws its progress bar.
	if _, err := exec.LookPath("script"); err != nil {
		testenv.Missing(t, "script(1) is needed to run pubsubctl on a terminal, to check its progress bar (Debian package bsdutils)")
	}
	term := exec.Command("script", "-q", "-e", "-c", binary+" dlq discard "+topic+" billing --all --why obsolete", "/dev/null")
	term.Env = append(os.Environ(), env...)
	out, err := term.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "(4/5)") || !strings.Contains(string(out), "discarded 5 dead letter(s)") {
		t.Fatalf("discard on a terminal: %v\n%q", err, out)
	}
	waitPending(t, c, topic, 0)
}
