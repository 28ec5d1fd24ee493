package main

import (
	"context"
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
		t.Fatalf("%v\noutput so far:\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"ledger: booked p-1 (attempt 1)",
		"ledger: p-2 attempt 1 failed\n", "ledger: p-2 attempt 2 failed\n", "ledger: p-2 attempt 3 failed\n",
		"ledger: booked p-3 (attempt 1)",
		"after 3 attempts, cid checkout-p-2: amount 25000 over the ledger limit 10000",
		"replayed 1 dead letter(s) to the ledger group",
		"ledger: booked p-2 (attempt 1)",
		"dead letters left: 0",
		"receipts group: 3 payments, each once",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Index(got, "fix:") > strings.Index(got, "booked p-2") {
		t.Errorf("p-2 was booked before the fix:\n%s", got)
	}
}

func TestDeadlettersMemory(t *testing.T) { check(t, "memory://") }

func TestDeadlettersKafka(t *testing.T) { check(t, kafkatest.New(t).URL("")) }
