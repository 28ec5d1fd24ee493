package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/console"
)

// publishClosed publishes n payments of key that the fixture's handler fails with
// "ledger closed" (permanent), and waits until the subscription has want letters.
func (f *fixture) publishClosed(t *testing.T, key string, n, want int) {
	t.Helper()
	payments := pubsub.NewTopic[payment](f.topic, pubsub.WithKey(func(p payment) string { return p.ID }))
	for range n {
		if err := pubsub.Publish(context.Background(), f.c, payments, payment{ID: key, Amount: 13}); err != nil {
			t.Fatal(err)
		}
	}
	f.waitPending(t, want)
}

// TestBulkDiscardActsOnWhatThePageShowed: on a page filtered to one key, "Discard
// all" of a group discards that key's letters of the group as the page listed them:
// not the other keys' letters of the group, nor letters that arrived after the page
// was loaded. The confirmation says how many and which filter.
func TestBulkDiscardActsOnWhatThePageShowed(t *testing.T) {
	f := newFixture(t, console.WithToken("admin-tok-5"))
	f.publishClosed(t, "cust-3", 4, 10)
	f.publishClosed(t, "cust-4", 3, 13)
	admin := newSession(t, f)
	admin.do("POST", "login", url.Values{"token": {"admin-tok-5"}})

	_, page := admin.do("GET", "subscription?topic="+f.topic+"&group="+group+"&key=cust-3", nil)
	if !strings.Contains(page, "Discard all 4") || !strings.Contains(page, `name="key" value="cust-3"`) {
		t.Fatalf("the page filtered to cust-3 does not offer to discard its 4 letters with the filter:\n%s", page)
	}
	snapshot := admin.snapshot("&key=cust-3")
	f.publishClosed(t, "cust-3", 2, 15) // after the page was loaded

	code, page := admin.do("POST", "action", url.Values{"csrf": {admin.csrf()}, "op": {"discard-group"}, "topic": {f.topic}, "group": {group},
		"error-group": {"ledger closed"}, "key": {"cust-3"}, "snapshot": {snapshot}, "shown": {"4"}})
	want := `Discarded 4 of the 4 letter(s) shown in the error group "ledger closed" with the filter key = "cust-3"`
	if code != http.StatusOK || !strings.Contains(page, strings.ReplaceAll(want, `"`, "&#34;")) {
		t.Fatalf("discard: %d, want the confirmation %s:\n%s", code, want, page)
	}
	if !strings.Contains(page, `value="cust-3"`) {
		t.Fatal("after the discard the page lost its filter")
	}
	left := f.waitPending(t, 11)
	byKey := map[string]int{}
	for _, l := range left {
		byKey[l.Key]++
	}
	if byKey["cust-3"] != 2 || byKey["cust-4"] != 3 || byKey["p-5"] != 1 {
		t.Fatalf("letters left by key: %v, want the 2 late cust-3, 3 cust-4 and p-5", byKey)
	}

	// A form without the page's snapshot acts on nothing.
	code, page = admin.do("POST", "action", url.Values{"csrf": {admin.csrf()}, "op": {"discard-group"}, "topic": {f.topic}, "group": {group},
		"error-group": {"ledger closed"}})
	if code != http.StatusOK || !strings.Contains(page, "reload the page") || len(f.letters(t)) != 11 {
		t.Fatalf("a bulk form without a snapshot: %d, %d letters left\n%s", code, len(f.letters(t)), page)
	}
}

// TestSubscriptionPages: the page lists at most size letters, links to the older
// ones, and shows the total; a letter's link reads it at its place.
func TestSubscriptionPages(t *testing.T) {
	f := newFixture(t, console.WithoutAuth())
	f.publishClosed(t, "cust-9", 5, 11)
	s := newSession(t, f)
	rows := regexp.MustCompile(`class="letter" href="([^"]+)"`)
	older := regexp.MustCompile(`href="(subscription\?[^"]+)" id="older"`)
	seen := map[string]bool{}
	path := fmt.Sprintf("subscription?topic=%s&group=%s&size=4", f.topic, group)
	for pages := 0; path != ""; pages++ {
		if pages > 3 {
			t.Fatal("more than 3 pages of 4 for 11 letters")
		}
		code, page := s.do("GET", path, nil)
		if code != http.StatusOK || !strings.Contains(page, "Letters (11,") {
			t.Fatalf("%s: %d\n%s", path, code, page)
		}
		for _, m := range rows.FindAllStringSubmatch(page, -1) {
			seen[m[1]] = true
		}
		path = ""
		if m := older.FindStringSubmatch(page); m != nil {
			path = strings.ReplaceAll(m[1], "&amp;", "&")
		}
	}
	if len(seen) != 11 {
		t.Fatalf("%d letters over the pages, want 11", len(seen))
	}
	for link := range seen {
		link = strings.ReplaceAll(link, "&amp;", "&")
		if !strings.Contains(link, "&p=0&o=") {
			t.Fatalf("a letter's link without its place: %s", link)
		}
		if code, page := s.do("GET", link, nil); code != http.StatusOK || !strings.Contains(page, `id="payload"`) {
			t.Fatalf("%s: %d", link, code)
		}
		break
	}
	if code, _ := s.do("GET", "subscription?topic="+f.topic+"&group="+group+"&size=0", nil); code != http.StatusBadRequest {
		t.Fatalf("size=0: %d, want 400", code)
	}
	if code, _ := s.do("GET", "subscription?topic="+f.topic+"&group="+group+"&after=bogus", nil); code != http.StatusBadRequest {
		t.Fatalf("a bad cursor: %d, want 400", code)
	}
}
