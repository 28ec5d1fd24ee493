package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pubsubkit/pubsub/internal/kafkatest"
)

func check(t *testing.T, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out strings.Builder
	if err := run(ctx, url, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	logPart, tree, ok := strings.Cut(out.String(), "\nspan tree:\n")
	if !ok {
		t.Fatalf("no span tree:\n%s", out.String())
	}
	byTopic := map[string][]string{}
	traceIDs := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(logPart), "\n")[1:] {
		var l map[string]any
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		for _, f := range []string{"cid", "topic", "event", "body", "processing", "occurred_at", "processed_at", "host"} {
			if _, ok := l[f]; !ok {
				t.Errorf("line lacks %s: %s", f, line)
			}
		}
		if l["cid"] != "checkout-7" {
			t.Errorf("cid %v in %s", l["cid"], line)
		}
		traceIDs[l["trace_id"].(string)] = true
		byTopic[l["topic"].(string)] = append(byTopic[l["topic"].(string)], l["event"].(string))
	}
	want := map[string]string{
		"tracing.orders":   "published,processed",
		"tracing.invoices": "published,failed,retried,processed",
		"tracing.emails":   "published,processed",
	}
	for topic, events := range want {
		if got := strings.Join(byTopic[topic], ","); got != events {
			t.Errorf("%s: events %s, want %s", topic, got, events)
		}
	}
	if len(traceIDs) != 1 {
		t.Errorf("the trace log names %d traces, want 1", len(traceIDs))
	}
	wantTree := `  send tracing.orders [producer]
    process tracing.orders [consumer]
      send tracing.invoices [producer]
        process tracing.invoices [consumer] event: failed event: retry
          send tracing.emails [producer]
            process tracing.emails [consumer]
`
	if strings.Count(tree, "trace ") != 1 || !strings.HasSuffix(tree, wantTree) {
		t.Errorf("span tree:\n%s\nwant one trace ending:\n%s", tree, wantTree)
	}
}

func TestTracingMemory(t *testing.T) { check(t, "memory://") }

func TestTracingKafka(t *testing.T) { check(t, kafkatest.New(t).URL("")) }
