package pubsub

import (
	"math/rand/v2"
	"regexp"
	"testing"
	"time"

	"github.com/pubsubkit/pubsub/metadata"
)

// TestAppendTime: appendTime writes every time as metadata.AppendTime does: seconds
// in a row and apart, fractions with and without trailing zeros, none, and years of
// other than four digits.
func TestAppendTime(t *testing.T) {
	base := time.Date(2026, 12, 6, 17, 0, 59, 0, time.FixedZone("x", 3600))
	times := []time.Time{base, base.Add(time.Nanosecond), base.Add(time.Second - 1), base.Add(time.Second),
		base.Add(120 * time.Millisecond), base.Add(123456780), base.Add(100 * time.Microsecond),
		base.Add(-time.Second), time.Date(10000, 1, 1, 0, 0, 0, 5, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Unix(0, 0), time.Now()}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		times = append(times, base.Add(time.Duration(r.Int64N(int64(72*time.Hour)))-36*time.Hour))
		times = append(times, times[len(times)-1].Add(time.Duration(r.IntN(3))*time.Millisecond)) // the same second, often
	}
	for _, at := range times {
		want := string(metadata.AppendTime([]byte("x"), at))
		if got := string(appendTime([]byte("x"), at)); got != want {
			t.Fatalf("appendTime(%v) = %q, want %q", at, got, want)
		}
	}
}

// TestAppendIDAndTime: a new version 4 id, unique, then the time as metadata writes it.
func TestAppendIDAndTime(t *testing.T) {
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	now := time.Now()
	for range 10000 {
		b := appendIDAndTime(nil, now)
		id, at := string(b[:36]), string(b[36:])
		if !uuid.MatchString(id) || seen[id] || at != metadata.FormatTime(now) {
			t.Fatalf("id %q (seen before: %v), time %q, want %q", id, seen[id], at, metadata.FormatTime(now))
		}
		seen[id] = true
	}
}
