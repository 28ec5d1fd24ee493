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
)

// TestWrongTokensThrottledPerAddress: after ten wrong tokens from one address, its
// logins are refused (429, with a message that says why and how long to wait), even
// with the right token; another address still logs in.
func TestWrongTokensThrottledPerAddress(t *testing.T) {
	c, err := pubsub.Open(context.Background(), "memory://")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h, err := console.Handler(c, console.WithToken("right-tok-1"))
	if err != nil {
		t.Fatal(err)
	}
	login := func(addr, token string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/login", strings.NewReader(url.Values{"token": {token}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.RemoteAddr = addr
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for i := range 10 {
		if w := login("192.0.2.7:4000", "wrong"); w.Code != http.StatusUnauthorized {
			t.Fatalf("wrong token %d: %d, want 401", i+1, w.Code)
		}
	}
	for _, token := range []string{"wrong", "right-tok-1"} {
		w := login("192.0.2.7:4001", token)
		if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" ||
			!strings.Contains(w.Body.String(), "Too many wrong tokens from your address (192.0.2.7): try again in ") {
			t.Fatalf("token %q after ten wrong ones: %d %q\n%s", token, w.Code, w.Header().Get("Retry-After"), w.Body)
		}
	}
	if w := login("198.51.100.9:4000", "right-tok-1"); w.Code != http.StatusSeeOther {
		t.Fatalf("the right token from another address: %d, want 303", w.Code)
	}
}
