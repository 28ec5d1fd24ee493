package main

import (
	"context"
	"strings"
	"testing"
	"time"
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
