package transport_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/pubsubkit/pubsub/transport"
)

func TestZeroRegistry(t *testing.T) {
	var r transport.Registry
	if _, err := r.Open(context.Background(), "kafka://b:9092", transport.OpenOptions{}); !errors.Is(err, transport.ErrUnknownScheme) ||
		!strings.Contains(err.Error(), `"kafka" (known: )`) {
		t.Fatalf("empty registry: %v", err)
	}
	r.Register("B", nil)
	r.Register("a", nil)
	if got := strings.Join(r.Schemes(), ","); got != "a,b" {
		t.Fatalf("Schemes = %s, want a,b (sorted, lower case)", got)
	}
}

// TestOpenHidesPassword: URLs that url.Parse refuses or misreads, with the password in
// places a naive redaction misses, never show it in an error.
func TestOpenHidesPassword(t *testing.T) {
	var r transport.Registry
	for _, raw := range []string{
		"kafka://user:hunter2@b:9092/%zz",
		"//user:hunter2@b:9092",
		"kafka:alice:hunter2@host:1",
		"kafka:/alice:hunter2@host",
		"kafka://alice:hun/ter2@host:1",
		"kafka://alice:hun?ter2@host:1",
		"kafka://alice:hun#ter2@host:1",
		"kafka://alice:12/hunter2@host:1",
		"kafka://alice:hun@ter2@host:1",
	} {
		_, err := r.Open(context.Background(), raw, transport.OpenOptions{})
		if err == nil {
			t.Fatalf("%s: no error", raw)
		}
		for _, part := range []string{"hunter2", "hun", "ter2"} {
			if strings.Contains(err.Error(), part) {
				t.Errorf("%s: error %q shows %q", raw, err, part)
			}
		}
	}
}

func TestRedactURL(t *testing.T) {
	for raw, want := range map[string]string{
		"kafka://alice:pw@host:1?x=1":                "kafka://alice:xxxxx@host:1?x=1",
		"kafka:alice:pw@host:1":                      "kafka:xxxxx@host:1",
		"kafka:/alice:pw@host":                       "kafka:xxxxx@host",
		"alice:pw@host":                              "alice:xxxxx@host",
		"//alice:pw@host":                            "//alice:xxxxx@host",
		"kafka://alice:p/w@host":                     "kafka://alice:xxxxx@host",
		"kafka://alice:p@w@host":                     "kafka://alice:xxxxx@host",
		"kafka://alice@host:1":                       "kafka://alice@host:1",
		"kafka://host:1,host:2":                      "kafka://host:1,host:2",
		"memory://":                                  "memory://",
		"nats://broker:4222?token=s3cret-nats-token": "nats://broker:4222?token=xxxxx",
		"x://u:pw@h/p?Password=a&tls=true&API%5FKEY=b&sasl_password_env=E#f": "x://u:xxxxx@h/p?Password=xxxxx&tls=true&API%5FKEY=xxxxx&sasl_password_env=E#f",
		"x://h?client_secret=a;auth_token=b&passwd=c&region=eu":              "x://h?client_secret=xxxxx&auth_token=xxxxx&passwd=xxxxx&region=eu",
		"kafka://alice:p?w@host?sasl=SCRAM-SHA-256&tls_key=k.pem":            "kafka://alice:xxxxx@host?sasl=xxxxx&tls_key=xxxxx",
		"x://h?flag&token": "x://h?flag&token",
	} {
		if got := transport.RedactURL(raw); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", raw, got, want)
		}
	}
}
