package urlquery_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/internal/urlquery"
)

func TestQuery(t *testing.T) {
	u, _ := url.Parse("x://?n=3&d=250ms&b=true&s=v&zz=1&aa=2&n2=x&n2=y")
	q := urlquery.New(u)
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
	q = urlquery.New(u)
	q.Int("n", 0)
	if err := q.Err(); err == nil || !strings.Contains(err.Error(), `n="ten" is not a whole number`) {
		t.Fatalf("malformed int: %v", err)
	}
}
