package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pubsubkit/pubsub/internal/kafkatest"
)

func TestQuickstart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out strings.Builder
	if err := run(ctx, "memory://", &out); err != nil {
		t.Fatal(err)
	}
	want := `published o-1
published o-2
published o-3
billing:
  invoiced o-1 for ada (12.50), attempt 1
  invoiced o-2 for grace (9.90), attempt 1
  invoiced o-3 for ada (42.00), attempt 1
shipping:
  shipped o-1 for ada (12.50), attempt 1
  shipped o-2 for grace (9.90), attempt 1
  shipped o-3 for ada (42.00), attempt 1
`
	if out.String() != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out.String(), want)
	}
}

// TestQuickstartKafka runs the same program on kafka:// against the in-process
// cluster. Different customers may sit on different partitions, so only each
// customer's own orders keep their order.
func TestQuickstartKafka(t *testing.T) {
	cluster := kafkatest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out strings.Builder
	if err := run(ctx, cluster.URL(""), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, line := range []string{
		"published o-1\npublished o-2\npublished o-3\n",
		"invoiced o-1 for ada (12.50), attempt 1", "invoiced o-2 for grace (9.90), attempt 1", "invoiced o-3 for ada (42.00), attempt 1",
		"shipped o-1 for ada (12.50), attempt 1", "shipped o-2 for grace (9.90), attempt 1", "shipped o-3 for ada (42.00), attempt 1",
	} {
		if strings.Count(got, line) != 1 {
			t.Errorf("output lacks %q once:\n%s", line, got)
		}
	}
	for _, verb := range []string{"invoiced", "shipped"} {
		if strings.Index(got, verb+" o-1") > strings.Index(got, verb+" o-3") {
			t.Errorf("ada's orders %s out of order:\n%s", verb, got)
		}
	}
}
