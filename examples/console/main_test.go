package main

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pubsubkit/pubsub"
)

// TestSetup: the example's client dead-letters its failing orders, and its console
// lets in the token and nobody else.
func TestSetup(t *testing.T) {
	c, h, err := setup("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(10 * time.Second)
	var letters []pubsub.DeadLetter
	for len(letters) < 6 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		if letters, err = c.DeadLetters(ctx, "orders", "billing"); err != nil {
			t.Fatal(err)
		}
	}
	if len(letters) != 6 {
		t.Fatalf("%d dead letters of billing, want 6 (4 over the limit, 2 negative)", len(letters))
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	cl := &http.Client{Jar: jar}
	resp, err := cl.PostForm(srv.URL+"/login", url.Values{"token": {"wrong"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("login with a wrong token: %s", resp.Status)
	}
	resp, err = cl.PostForm(srv.URL+"/login", url.Values{"token": {"s3cret"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "billing") || strings.Contains(string(body), "s3cret") {
		t.Fatalf("after login: %s\n%s", resp.Status, body)
	}
}
