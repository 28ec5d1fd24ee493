package kafka_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

// FuzzParseURL: any string either parses into a valid Config or is refused with
// ErrInvalidOption; parsing never panics, and a refused URL's password never shows
// in the error.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"kafka://b1:9092",
		"kafka://svc@b1:9092,b2:9092?tls=true&sasl=SCRAM-SHA-512",
		"kafka://b1:9092?partitions=0&replication_factor=-1",
		"kafka://b1:9092?session_timeout=1ms&rebalance_timeout=xyz",
		"kafka://u:secret@b1:9092",
		"kafka://b1:9092?unknown=1&partitions=3&partitions=4",
		"kafka://?tls_cert=/nope",
		"kafka://b1:9092?max_message_bytes=99999999999999999999",
		"kafka://[::1]:9092?dial_timeout=-5s",
		"kafka://%zz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		c, err := kafka.ParseURL(u)
		if err != nil {
			if !errors.Is(err, transport.ErrInvalidOption) {
				t.Fatalf("ParseURL(%q) = %v, which does not wrap ErrInvalidOption", raw, err)
			}
			if pw, ok := u.User.Password(); ok && len(pw) >= 4 && strings.Contains(err.Error(), pw) {
				t.Fatalf("the error for %q shows the password: %v", raw, err)
			}
			return
		}
		if len(c.Brokers) == 0 || c.Partitions < 1 || c.ReplicationFactor < 1 || c.SessionTimeout <= 0 || c.RebalanceTimeout <= 0 {
			t.Fatalf("ParseURL(%q) accepted an unusable config %+v", raw, c)
		}
		if _, ok := u.User.Password(); ok {
			t.Fatalf("ParseURL(%q) accepted a password in the URL", raw)
		}
	})
}
