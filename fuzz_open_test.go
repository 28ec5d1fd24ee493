package pubsub_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/transport"
)

// FuzzOpenHidesPassword: whatever a URL holding a password looks like (the password
// with '/', '?', '#', '@' or ':' in it; an opaque kafka:alice:pw@host; no scheme; with
// parameters), the error of Open never shows the password, nor a piece of it of five
// bytes or more (that the rest of the URL does not hold anyway). Open gets a context
// that is already done, so it does no network I/O.
func FuzzOpenHidesPassword(f *testing.F) {
	for _, seed := range []struct {
		scheme, user, password, host, query string
		form                                uint8
	}{
		{"kafka", "alice", "hunter2secret", "b1:9092", "tls=true", 0},
		{"kafka", "alice", "hun/ter2secret", "b1:9092", "", 0},
		{"kafka", "alice", "12345/hunter2", "b1:9092", "", 0},
		{"kafka", "alice", "hunter?2secret", "b1:9092", "sasl=PLAIN", 0},
		{"kafka", "alice", "hunter#2secret", "b1:9092", "", 0},
		{"kafka", "alice", "hun@ter2secret", "b1:9092", "", 0},
		{"kafka", "alice", "hunter:2secret", "b1:9092", "", 0},
		{"kafka", "alice", "hunter2secret", "b1:9092", "", 1},
		{"kafka", "alice", "hunter2secret", "b1:9092", "", 2},
		{"kafka", "alice", "hunter2secret", "b1:9092", "", 3},
		{"memory", "alice", "hunter2secret", "", "max_retained=5", 0},
		{"gochannel", "bob", "s3cret/pass?word", "x", "", 0},
		// The forms of issue 12: kafka://alice:pw@host:1, kafka:alice:pw@host:1,
		// kafka:/alice:pw@host, and passwords holding '/', '?' and '#' together or
		// percent-encoded, with parameters after them.
		{"kafka", "alice", "pwsecret", "host:1", "", 0},
		{"kafka", "alice", "pwsecret", "host:1", "", 1},
		{"kafka", "alice", "pwsecret", "host", "", 2},
		{"kafka", "alice", "p/w?x#yz12", "host:1", "dial_timeout=1s", 0},
		{"kafka", "alice", "p/w?x#yz12", "host:1", "", 1},
		{"kafka", "alice", "p/w?x#yz12", "host", "", 2},
		{"kafka", "alice", "pw%2Fsecret%3F", "host:1", "sasl=PLAIN", 0},
		{"kafka", "alice", "#secretpw", "host:1", "", 0},
		{"kafka", "alice", "secretpw/", "host:1,host:2", "partitions=3", 0},
		{"kafka", "al/ice", "secret?pw", "host:1", "", 3},
		{"KAFKA", "alice", "Secret:pw@x", "host:1", "", 0},
	} {
		f.Add(seed.scheme, seed.user, seed.password, seed.host, seed.query, seed.form)
	}
	f.Fuzz(func(t *testing.T, scheme, user, password, host, query string, form uint8) {
		if len(password) < 5 {
			return
		}
		var raw string
		switch form % 4 {
		case 0:
			raw = scheme + "://" + user + ":" + password + "@" + host + "?" + query
		case 1:
			raw = scheme + ":" + user + ":" + password + "@" + host
		case 2:
			raw = scheme + ":/" + user + ":" + password + "@" + host
		case 3:
			raw = "//" + user + ":" + password + "@" + host
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		c, err := pubsub.Open(ctx, raw)
		if err == nil {
			c.Close()
			return
		}
		// The error may quote the URL's other parts and its own words; a password that
		// shares five bytes in a row with either tells nothing.
		skeleton := strings.Replace(raw, password, "\x00", 1) // the URL without its password
		rest := strings.ToLower(strings.Join([]string{skeleton, strconv.Quote(scheme), pubsubWords}, "\x00"))
		windows := func(s string, fn func(w string) bool) bool {
			for i := 0; i+5 <= len(s); i++ {
				if fn(s[i : i+5]) {
					return true
				}
			}
			return false
		}
		if windows(password, func(w string) bool { return strings.Contains(rest, strings.ToLower(w)) }) {
			return
		}
		red := transport.RedactURL(raw)
		if windows(password, func(w string) bool { return strings.Contains(red, w) }) {
			t.Fatalf("RedactURL(%q) = %q still shows a piece of the password", raw, red)
		}
		// What is left of the error once the (redacted) URL and the scheme it quotes
		// are taken out must not hold a piece of the password.
		msg := err.Error()
		for _, quoted := range []string{red, strconv.Quote(strings.ToLower(scheme)), strconv.Quote(scheme)} {
			msg = strings.ReplaceAll(msg, quoted, "\x00")
		}
		words := strings.ToLower(pubsubWords)
		if windows(password, func(w string) bool { return strings.Contains(msg, w) && !strings.Contains(words, strings.ToLower(w)) }) {
			t.Fatalf("Open(%q): the error shows a piece of the password: %v", raw, err)
		}
	})
}

// pubsubWords is text errors hold whatever the URL: a password piece that is one of
// these words is not a leak.
const pubsubWords = "pubsub: open invalid option unknown URL scheme known: gochannel, kafka, memory cannot parse transport " +
	"characters such as in its user part must be percent-encoded, and a password belongs in the environment, not the URL " +
	"kafka: the URL is not kafka://[user@]host:port,...: a user part holding must be percent-encoded, and a password " +
	"belongs in the environment variable named by sasl_password_env (default PUBSUB_KAFKA_PASSWORD) holds a password; " +
	"put it in instead memory: a memory URL takes no host, user, path or fragment, only parameters (memory://?max_retained=1000) " +
	"gochannel: a gochannel URL takes no host, user, path or fragment, only parameters (gochannel://?persistent=true) has no scheme " +
	"(want for example memory:// or kafka://host:9092) xxxxx"
