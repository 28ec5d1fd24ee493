package console_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/console"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/memory"
)

// TestURLQuerySecretsHidden: a transport URL with a secret in its query string (a
// custom transport's token) is shown with the secret masked.
func TestURLQuerySecretsHidden(t *testing.T) {
	var reg transport.Registry
	reg.Register("nats", func(context.Context, *url.URL, transport.OpenOptions) (transport.Transport, error) {
		return memory.New(memory.Config{})
	})
	c, err := pubsub.Open(context.Background(), "nats://broker:4222?token=s3cret-nats-token&stream=orders", pubsub.WithRegistry(&reg))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f := &fixture{c: c, topic: "unused"}
	h, err := console.Handler(c, console.WithoutAuth())
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(http.StripPrefix("/ops", h))
	t.Cleanup(f.srv.Close)
	_, page := newSession(t, f).do("GET", "", nil)
	if strings.Contains(page, "s3cret") || !strings.Contains(page, "nats://broker:4222?token=xxxxx&amp;stream=orders") {
		t.Fatalf("the header's URL:\n%s", page)
	}
}

// TestStaticServesFilesOnly: /static/ serves its files and lists no directory.
func TestStaticServesFilesOnly(t *testing.T) {
	f := newFixture(t, console.WithoutAuth())
	s := newSession(t, f)
	if code, body := s.do("GET", "static/style.css", nil); code != http.StatusOK || body == "" {
		t.Fatalf("static/style.css: %d", code)
	}
	for _, path := range []string{"static/", "static/nope.css"} {
		if code, body := s.do("GET", path, nil); code != http.StatusNotFound || strings.Contains(body, "style.css") {
			t.Fatalf("%s: %d\n%s", path, code, body)
		}
	}
}
