package console_test

import (
	"context"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/console"
)

func TestHandlerRequiresAuthentication(t *testing.T) {
	c, err := pubsub.Open(context.Background(), "memory://")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := console.Handler(c); !errors.Is(err, console.ErrNoAuth) {
		t.Fatalf("Handler without auth: %v, want ErrNoAuth", err)
	}
	if _, err := console.Handler(c, console.WithToken("")); !errors.Is(err, pubsub.ErrInvalidOption) {
		t.Fatalf("WithToken(\"\"): %v", err)
	}
	if _, err := console.Handler(c, console.WithToken("a"), console.WithoutAuth()); !errors.Is(err, pubsub.ErrInvalidOption) {
		t.Fatalf("two ways to authenticate: %v", err)
	}
	if _, err := console.Handler(c, console.WithoutAuth()); err != nil {
		t.Fatalf("WithoutAuth: %v", err)
	}
}

// session is a browser-like client of the fixture's console.
type session struct {
	t   *testing.T
	f   *fixture
	cl  *http.Client
	hdr http.Header
}

func newSession(t *testing.T, f *fixture) *session {
	jar, _ := cookiejar.New(nil)
	return &session{t: t, f: f, cl: &http.Client{Jar: jar}, hdr: http.Header{}}
}

func (s *session) do(method, path string, form url.Values) (int, string) {
	s.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, s.f.srv.URL+"/ops/"+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range s.hdr {
		req.Header[k] = v
	}
	resp, err := s.cl.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		s.t.Fatalf("%s %s: Content-Security-Policy %q", method, path, csp)
	}
	return resp.StatusCode, string(b)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

var snapshotRE = regexp.MustCompile(`name="snapshot" value="([^"]+)"`)

// snapshot loads the subscription page with the filter query (such as "&key=p-1") and
// returns the snapshot its bulk forms carry.
func (s *session) snapshot(query string) string {
	s.t.Helper()
	_, page := s.do("GET", "subscription?topic="+s.f.topic+"&group="+group+query, nil)
	m := snapshotRE.FindStringSubmatch(page)
	if m == nil {
		s.t.Fatalf("no snapshot on the subscription page:\n%s", page)
	}
	return html.UnescapeString(m[1])
}

func (s *session) csrf() string {
	_, page := s.do("GET", "", nil)
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		s.t.Fatalf("no CSRF token on the index page:\n%s", page)
	}
	return m[1]
}

// TestTokenLoginRolesAndCSRF: pages need a login; the token is never shown; a viewer
// sees no buttons and cannot post; a post without the session's CSRF token, or from
// another site, changes nothing.
func TestTokenLoginRolesAndCSRF(t *testing.T) {
	f := newFixture(t, console.WithToken("admin-tok-81"), console.WithViewerToken("viewer-tok-27"))
	anon := newSession(t, f)
	if code, page := anon.do("GET", "subscription?topic=payments&group=ledger", nil); code != http.StatusOK || !strings.Contains(page, `name="token"`) {
		t.Fatalf("a page without logging in: %d, not the login page", code)
	}
	if code, _ := anon.do("POST", "action", url.Values{"op": {"pause"}, "topic": {topic}, "group": {group}}); code != http.StatusUnauthorized {
		t.Fatalf("a post without logging in: %d", code)
	}

	viewer := newSession(t, f)
	if code, _ := viewer.do("POST", "login", url.Values{"token": {"viewer-tok-27"}}); code != http.StatusOK {
		t.Fatalf("viewer login: %d", code)
	}
	_, page := viewer.do("GET", "subscription?topic=payments&group=ledger", nil)
	if strings.Contains(page, "<button name=\"op\"") || strings.Contains(page, `type="checkbox"`) || !strings.Contains(page, "viewer") {
		t.Fatalf("a viewer's page has buttons that would fail:\n%s", page)
	}
	if code, _ := viewer.do("POST", "action", url.Values{"csrf": {viewer.csrf()}, "op": {"discard-group"}, "topic": {topic}, "group": {group}, "error-group": {"ledger closed"}, "snapshot": {"t0"}}); code != http.StatusForbidden {
		t.Fatalf("a viewer's discard: %d", code)
	}

	admin := newSession(t, f)
	admin.do("POST", "login", url.Values{"token": {"admin-tok-81"}})
	for _, path := range []string{"", "subscription?topic=payments&group=ledger", "history?cid=cid-0"} {
		if _, page := admin.do("GET", path, nil); strings.Contains(page, "admin-tok-81") || strings.Contains(page, "viewer-tok-27") {
			t.Fatalf("page %q shows a token", path)
		}
	}
	discard := url.Values{"op": {"discard-group"}, "topic": {topic}, "group": {group}, "error-group": {"ledger closed"}, "snapshot": {admin.snapshot("")}}
	if code, _ := admin.do("POST", "action", discard); code != http.StatusForbidden {
		t.Fatalf("a post without a CSRF token: %d", code)
	}
	discard.Set("csrf", viewer.csrf())
	if code, _ := admin.do("POST", "action", discard); code != http.StatusForbidden {
		t.Fatalf("a post with another session's CSRF token: %d", code)
	}
	discard.Set("csrf", admin.csrf())
	admin.hdr.Set("Sec-Fetch-Site", "cross-site")
	if code, _ := admin.do("POST", "action", discard); code != http.StatusForbidden {
		t.Fatalf("a cross-site post: %d", code)
	}
	if n := len(f.resolved(t)); n != 0 {
		t.Fatalf("refused posts resolved %d letters", n)
	}
	admin.hdr.Del("Sec-Fetch-Site")
	if code, _ := admin.do("POST", "action", discard); code != http.StatusOK {
		t.Fatalf("the admin's discard: %d", code)
	}
	if r := f.resolved(t); len(r) != 1 || r[0].Replayed || r[0].By != "token" {
		t.Fatalf("resolutions: %+v", r)
	}
	if code, page := admin.do("POST", "action", url.Values{"csrf": {admin.csrf()}, "op": {"pause"}, "topic": {topic}, "group": {group}}); code != http.StatusOK || !strings.Contains(page, "paused") {
		t.Fatalf("pause: %d", code)
	}
	if h := f.c.Health(); len(h) != 1 || !h[0].Paused {
		t.Fatalf("health after pausing: %+v", h)
	}
	admin.do("POST", "action", url.Values{"csrf": {admin.csrf()}, "op": {"resume"}, "topic": {topic}, "group": {group}})
	if h := f.c.Health(); h[0].Paused {
		t.Fatal("still paused after resuming")
	}
}

// TestAuthorizerReadOnlyAndHistory: an authorizer's identity is recorded; ReadOnly
// refuses an admin's change; the history page follows a correlation id.
func TestAuthorizerReadOnlyAndHistory(t *testing.T) {
	authorize := func(r *http.Request) (console.Role, bool) {
		switch r.Header.Get("X-User") {
		case "ana":
			return console.Admin, true
		case "vic":
			return console.Viewer, true
		}
		return 0, false
	}
	identify := func(r *http.Request) string { return r.Header.Get("X-User") }
	f := newFixture(t, console.WithAuthorizer(authorize), console.WithIdentity(identify))
	nobody := newSession(t, f)
	if code, _ := nobody.do("GET", "", nil); code != http.StatusUnauthorized {
		t.Fatalf("no user: %d", code)
	}
	ana := newSession(t, f)
	ana.hdr.Set("X-User", "ana")
	code, _ := ana.do("POST", "action", url.Values{"csrf": {ana.csrf()}, "op": {"replay-group"}, "topic": {topic}, "group": {group}, "error-group": {"ledger closed"}, "snapshot": {ana.snapshot("")}, "note": {"ledger reopened"}})
	if r := f.resolved(t); code != http.StatusOK || len(r) != 1 || !r[0].Replayed || r[0].By != "ana" || r[0].Note != "ledger reopened" {
		t.Fatalf("replay by an authorized admin: %d %+v", code, r)
	}
	_, page := ana.do("GET", "history?cid=cid-5", nil)
	for _, want := range []string{"published", "failed", "dead_lettered", "replayed"} {
		if !strings.Contains(page, ">"+want+"<") {
			t.Fatalf("history of cid-5 lacks %q:\n%s", want, page)
		}
	}

	ro := newFixture(t, console.WithAuthorizer(authorize), console.ReadOnly())
	ana = newSession(t, ro)
	ana.hdr.Set("X-User", "ana")
	_, page = ana.do("GET", "", nil)
	if strings.Contains(page, `value="pause"`) || !strings.Contains(page, ">viewer<") {
		t.Fatal("ReadOnly still shows the pause button to an admin")
	}
	if code, _ := ana.do("POST", "action", url.Values{"csrf": {ana.csrf()}, "op": {"pause"}, "topic": {topic}, "group": {group}}); code != http.StatusForbidden {
		t.Fatalf("pause under ReadOnly: %d", code)
	}
}

// TestFiltersByTimeAndKey: the time range and key filters narrow the list; a bad time
// is a 400 that says which field.
func TestFiltersByTimeAndKey(t *testing.T) {
	f := newFixture(t, console.WithoutAuth())
	s := newSession(t, f)
	base := "subscription?topic=payments&group=ledger"
	future := time.Now().UTC().Add(time.Hour).Format("2006-01-02T15:04")
	past := time.Now().UTC().Add(-time.Hour).Format("2006-01-02T15:04")
	rows := regexp.MustCompile(`class="letter"`)
	for _, c := range []struct {
		query string
		want  int
	}{{"", 6}, {"&since=" + past, 6}, {"&since=" + future, 0}, {"&until=" + past, 0}, {"&until=" + future + "&key=p-1", 1}} {
		code, page := s.do("GET", base+c.query, nil)
		if n := len(rows.FindAllString(page, -1)); code != http.StatusOK || n != c.want {
			t.Fatalf("%s: %d, %d letters listed, want %d", c.query, code, n, c.want)
		}
	}
	if code, page := s.do("GET", base+"&since=tomorrow", nil); code != http.StatusBadRequest || !strings.Contains(page, "since") {
		t.Fatalf("a bad time: %d", code)
	}
	if code, _ := s.do("GET", "subscription?topic=payments&group=ledgr", nil); code != http.StatusNotFound {
		t.Fatalf("a misspelt group: %d, want 404", code)
	}
}
