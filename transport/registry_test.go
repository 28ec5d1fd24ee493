package transport_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pubsubkit/pubsub/transport"
)

func TestZeroRegistry(t *testing.T) {
	var r transport.Registry
	if _, err := r.Open(context.Background(), "kafka://b:9092"); !errors.Is(err, transport.ErrUnknownScheme) ||
		!strings.Contains(err.Error(), `"kafka" (known: )`) {
		t.Fatalf("empty registry: %v", err)
	}
	r.Register("B", nil)
	r.Register("a", nil)
	if got := strings.Join(r.Schemes(), ","); got != "a,b" {
		t.Fatalf("Schemes = %s, want a,b (sorted, lower case)", got)
	}
}

func TestParseURLHidesPassword(t *testing.T) {
	_, err := transport.ParseURL("kafka://user:hunter2@b:9092/%zz")
	if err == nil || strings.Contains(err.Error(), "hunter2") || !errors.Is(err, transport.ErrInvalidOption) {
		t.Fatalf("ParseURL error %v", err)
	}
	_, err = transport.ParseURL("//user:hunter2@b:9092")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("no-scheme error %v shows the password", err)
	}
}

func TestQuery(t *testing.T) {
	u, _ := url.Parse("x://?n=3&d=250ms&b=true&s=v&zz=1&aa=2&n2=x&n2=y")
	q := transport.NewQuery(u)
	if q.Int("n", 0) != 3 || q.Duration("d", 0) != 250*time.Millisecond || !q.Bool("b", false) || q.String("s", "") != "v" {
		t.Fatal("typed values not read")
	}
	if q.Int("missing", 7) != 7 {
		t.Fatal("default not used")
	}
	q.String("n2", "")
	err := q.Err()
	if !errors.Is(err, transport.ErrInvalidOption) {
		t.Fatalf("Err = %v", err)
	}
	for _, want := range []string{"unknown parameter aa, zz", "accepted: b, d, missing, n, n2, s", "n2 is given 2 times"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	u, _ = url.Parse("x://?n=ten")
	q = transport.NewQuery(u)
	q.Int("n", 0)
	if err := q.Err(); err == nil || !strings.Contains(err.Error(), `n="ten" is not a whole number`) {
		t.Fatalf("malformed int: %v", err)
	}
}
