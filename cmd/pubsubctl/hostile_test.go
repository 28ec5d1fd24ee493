package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/codec"
	"github.com/pubsubkit/pubsub/internal/kafkatest"
)

// Hostile text: set the terminal's title, clear the screen, an OSC 8 link, a C1 CSI,
// a bidirectional override, DEL.
const (
	titleSeq = "\x1b]0;pwned\x07"
	clearSeq = "\x1b[2J"
	linkSeq  = "\x1b]8;;http://evil.example\x07click\x1b]8;;\x07"
	c1Seq    = "\u009b31m"
	bidiSeq  = "\u202egpj.exe"
)

// hostilePayloads are the payloads of the hostile letters: binary, JSON holding
// invalid UTF-8, JSON holding C1 and DEL characters, and text with escapes.
var hostilePayloads = [][]byte{
	[]byte("\xff\xfe" + clearSeq + "\x00bin"),
	[]byte(`{"name": "caf` + "\xe9" + `"}`),
	[]byte(`{"name": "` + c1Seq + "\x7f" + bidiSeq + `"}`),
	[]byte("line one" + titleSeq + "\nline two" + linkSeq),
}

// hostileFixture dead-letters the hostile payloads with a reason, key and header full
// of escape sequences, on a fresh Kafka cluster.
func hostileFixture(t *testing.T) (*pubsub.Client, []string, string) {
	c, url := kafkaClient(t)
	topic := pubsub.NewTopic[[]byte](kafkatest.Topic("hostile"), pubsub.WithCodec(codec.Raw))
	err := pubsub.Subscribe(c, topic, "billing", func(_ context.Context, m *pubsub.Message[[]byte]) error {
		return pubsub.Permanent(fmt.Errorf("refused %s%s%s\nsecond line%s", titleSeq, clearSeq, c1Seq, linkSeq))
	})
	if err != nil {
		t.Fatal(err)
	}
	runClient(t, c)
	for i, p := range hostilePayloads {
		err := pubsub.Publish(context.Background(), c, topic, p, pubsub.WithMessageKey(fmt.Sprintf("k%d%s%s", i, clearSeq, bidiSeq)),
			pubsub.WithMetadata("note", linkSeq+titleSeq+"\xff"))
		if err != nil {
			t.Fatal(err)
		}
	}
	waitPending(t, c, topic.Name(), len(hostilePayloads))
	return c, []string{"PUBSUB_URL=" + url}, topic.Name()
}

// checkInert fails unless out is valid UTF-8 without any control character but
// newline, DEL, C1 control or bidirectional override.
func checkInert(t *testing.T, what string, out []byte) {
	t.Helper()
	if !utf8.Valid(out) {
		t.Fatalf("%s: output is not valid UTF-8:\n%q", what, out)
	}
	for i, r := range string(out) {
		if (r < 0x20 && r != '\n') || (r >= 0x7f && r <= 0x9f) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
			t.Fatalf("%s: output holds %U at byte %d:\n%q", what, r, i, out)
		}
	}
}

// TestHostileLettersPrintedInert reads every command's output as bytes: tables,
// show, stats and tail show escapes visibly; --json is valid UTF-8 JSON from which
// each payload comes back byte for byte.
func TestHostileLettersPrintedInert(t *testing.T) {
	c, env, topic := hostileFixture(t)
	letters := waitPending(t, c, topic, len(hostilePayloads))

	r := pubsubctl(t, env, "dlq", "list", topic, "billing").want(t, exitOK)
	checkInert(t, "dlq list", []byte(r.out+r.errOut))
	if !strings.Contains(r.out, `refused \x1b]0;pwned\x07\x1b[2J\u009b31m`) || !strings.Contains(r.out, `k0\x1b[2J\u202egpj.exe`) {
		t.Fatalf("dlq list does not show the escapes visibly:\n%s", r.out)
	}
	r = pubsubctl(t, env, "dlq", "stats", topic, "billing").want(t, exitOK)
	checkInert(t, "dlq stats", []byte(r.out+r.errOut))
	for _, l := range letters {
		r = pubsubctl(t, env, "dlq", "show", topic, "billing", l.ID).want(t, exitOK)
		checkInert(t, "dlq show", []byte(r.out+r.errOut))
		if !strings.Contains(r.out, `\x1b]8;;http://evil.example\x07click`) || !strings.Contains(r.out, "second line") {
			t.Fatalf("dlq show:\n%s", r.out)
		}
	}
	r = pubsubctl(t, env, "tail", topic, "--from-start", "--count", fmt.Sprint(len(hostilePayloads))).want(t, exitOK)
	checkInert(t, "tail", []byte(r.out+r.errOut))
	if !strings.Contains(r.out, `\xff\xfe\x1b[2J\x00bin`) {
		t.Fatalf("tail does not show the binary payload's bytes visibly:\n%s", r.out)
	}

	var listed []struct {
		ID            string            `json:"id"`
		Key           string            `json:"key"`
		Metadata      map[string]string `json:"metadata"`
		Payload       json.RawMessage   `json:"payload"`
		PayloadText   *string           `json:"payload_text"`
		PayloadBase64 string            `json:"payload_base64"`
	}
	r = pubsubctl(t, env, "--json", "dlq", "list", topic, "billing").want(t, exitOK)
	checkInert(t, "dlq list --json", []byte(r.out))
	if err := json.Unmarshal([]byte(r.out), &listed); err != nil || len(listed) != len(hostilePayloads) {
		t.Fatalf("dlq list --json: %v\n%s", err, r.out)
	}
	got := map[string]bool{}
	for _, l := range listed {
		var payload []byte
		switch {
		case l.PayloadBase64 != "":
			b, err := base64.StdEncoding.DecodeString(l.PayloadBase64)
			if err != nil || l.PayloadText == nil {
				t.Fatalf("payload_base64 %q: %v, payload_text %v", l.PayloadBase64, err, l.PayloadText)
			}
			payload = b
		case l.Payload != nil:
			var v struct{ Name string }
			if err := json.Unmarshal(l.Payload, &v); err != nil {
				t.Fatalf("payload %s: %v", l.Payload, err)
			}
			payload = []byte(`{"name": "` + v.Name + `"}`)
		default:
			payload = []byte(*l.PayloadText)
		}
		got[string(payload)] = true
	}
	for _, p := range hostilePayloads {
		if !got[string(p)] {
			t.Fatalf("payload %q does not come back from --json (got %v)", p, got)
		}
	}
	out := []byte(pubsubctl(t, env, "--json", "tail", topic, "--from-start", "--count", fmt.Sprint(len(hostilePayloads))).want(t, exitOK).out)
	checkInert(t, "tail --json", out)
	for _, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		if !json.Valid(line) {
			t.Fatalf("tail --json line is not JSON: %q", line)
		}
	}
}

// TestReadingCreatesNothing: tail, lag and dlq list of unknown topics exit 3 with a
// message and create no topic; lag of a group that never committed says so, counts
// every message as lag and exits 3; replay and discard that select nothing exit 3;
// --timeout is checked and named.
func TestReadingCreatesNothing(t *testing.T) {
	c, env, topic := kafkaFixture(t, 4)
	ctx := context.Background()
	typo := kafkatest.Topic("typo")
	for _, args := range [][]string{{"tail", typo}, {"lag", typo, "billing"}, {"dlq", "list", typo, "billing"}, {"dlq", "stats", typo, "billing"}} {
		start := time.Now()
		r := pubsubctl(t, env, args...).want(t, exitNotFound, args...)
		if !strings.Contains(r.errOut, typo) || r.out != "" {
			t.Fatalf("pubsubctl %v: stdout %q, stderr %q", args, r.out, r.errOut)
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("pubsubctl %v took %s", args, time.Since(start))
		}
	}
	for _, name := range []string{typo, typo + ".billing.dlq"} {
		if exists, err := c.TopicExists(ctx, name); err != nil || exists {
			t.Fatalf("topic %s exists after reading it: %v, %v", name, exists, err)
		}
	}

	r := pubsubctl(t, env, "lag", topic, "nosuchgroup").want(t, exitNotFound)
	if !strings.Contains(r.out, "total") || !strings.Contains(r.out, "  4") || !strings.Contains(r.out, "no commits") ||
		!strings.Contains(r.errOut, `group "nosuchgroup" has never committed`) {
		t.Fatalf("lag of a group that never committed:\n%s\n%s", r.out, r.errOut)
	}
	var lag struct {
		Committed  bool  `json:"committed"`
		Lag        int64 `json:"lag"`
		Partitions []struct {
			Committed *int64 `json:"committed"`
			Lag       int64  `json:"lag"`
		} `json:"partitions"`
	}
	r = pubsubctl(t, env, "--json", "lag", topic, "nosuchgroup").want(t, exitNotFound)
	if err := json.Unmarshal([]byte(r.out), &lag); err != nil || lag.Committed || lag.Lag != 4 || lag.Partitions[0].Committed != nil {
		t.Fatalf("--json lag of a group that never committed: %v\n%s", err, r.out)
	}

	r = pubsubctl(t, env, "dlq", "discard", topic, "billing", "--error", "no such error").want(t, exitNotFound)
	if !strings.Contains(r.errOut, `selected by --error "no such error"`) {
		t.Fatalf("discard of no letter: %q", r.errOut)
	}
	r = pubsubctl(t, env, "--json", "dlq", "replay", topic, "billing", "--first", "1").want(t, exitOK)
	if strings.Contains(r.out, `"error"`) || !strings.Contains(r.out, `"replayed": 1`) {
		t.Fatalf("replay --json on success: %s", r.out)
	}

	pubsubctl(t, env, "--timeout", "-5s", "lag", topic, "billing").want(t, exitUsage)
	r = pubsubctl(t, env, "--timeout", "1ms", "lag", topic, "billing").want(t, exitFailed)
	if !strings.Contains(r.errOut, "gave up after 1ms (--timeout)") || strings.Contains(r.errOut, "dial_timeout") {
		t.Fatalf("--timeout 1ms: %q", r.errOut)
	}
}

// TestBulkDiscardAsOfList: discard --all --key --as-of with the snapshot dlq list
// printed discards the letters listed, not one dead-lettered after.
func TestBulkDiscardAsOfList(t *testing.T) {
	c, env, topic := kafkaFixture(t, 8)
	r := pubsubctl(t, env, "dlq", "list", topic, "billing", "--reason", "declined").want(t, exitOK)
	_, snapshot, ok := strings.Cut(r.errOut, "--as-of ")
	if !ok {
		t.Fatalf("dlq list printed no snapshot: %q", r.errOut)
	}
	snapshot, _, _ = strings.Cut(snapshot, " ")
	orders := pubsub.NewTopic[order](topic, pubsub.WithKey(func(o order) string { return o.ID }))
	if err := pubsub.Publish(context.Background(), c, orders, order{ID: "late", Amount: 500}); err != nil {
		t.Fatal(err)
	}
	waitPending(t, c, topic, 9)
	r = pubsubctl(t, env, "dlq", "discard", topic, "billing", "--all", "--reason", "declined", "--as-of", snapshot).want(t, exitOK)
	if !strings.Contains(r.out, `discarded 6 dead letter(s) selected by --all --reason "declined" --as-of`) {
		t.Fatalf("discard --as-of: %q", r.out)
	}
	left := waitPending(t, c, topic, 3)
	late := 0
	for _, l := range left {
		if l.Key == "late" {
			late++
		}
	}
	if late != 1 {
		t.Fatalf("the letter dead-lettered after the list was discarded: %+v", left)
	}
	pubsubctl(t, env, "dlq", "discard", topic, "billing", "--all", "--as-of", "yesterday").want(t, exitUsage)
}

// TestHelpNamesRealCommands: the help names only commands that exist.
func TestHelpNamesRealCommands(t *testing.T) {
	r := pubsubctl(t, nil, "--help").want(t, exitOK)
	if strings.Contains(r.out, "topics command") || strings.Contains(r.out, "lag and topics") {
		t.Fatalf("--help mentions a topics command:\n%s", r.out)
	}
	for _, cmd := range []string{"dlq", "lag", "tail"} {
		if err := exec.Command(binary, cmd, "--help").Run(); err != nil {
			t.Fatalf("%s --help: %v", cmd, err)
		}
	}
}
