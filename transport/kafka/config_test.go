package kafka_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

// TestFetchBytesBounded: fetch_bytes is refused above 100 MiB, the largest broker
// response franz-go reads (each fetch of one broker carries up to fetch_bytes), with
// an error that says so, instead of being accepted and failing every Subscribe; 100
// MiB itself is taken.
func TestFetchBytesBounded(t *testing.T) {
	_, err := kafka.ParseURL(mustURL(t, "kafka://127.0.0.1:9092?fetch_bytes=104857601"))
	if !errors.Is(err, transport.ErrInvalidOption) || !strings.Contains(err.Error(), "fetch bytes 104857601") {
		t.Errorf("fetch_bytes of 100 MiB and one byte: %v; want an ErrInvalidOption naming it", err)
	}
	if _, err := kafka.ParseURL(mustURL(t, "kafka://127.0.0.1:9092?fetch_bytes=104857600")); err != nil {
		t.Errorf("fetch_bytes of 100 MiB refused: %v", err)
	}
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
