package console

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// sessionCookie names the cookie that holds a browser's session id.
const sessionCookie = "pubsub_console"

// maxSessions bounds the sessions kept for each role (token viewers, token admins,
// and the sessions of WithAuthorizer and WithoutAuth, whose role is decided on each
// request): when a role is at its cap, its oldest session goes, so that logins of one
// role never end another role's sessions.
var maxSessions = map[Role]int{Viewer: 10000, Admin: 1000, 0: 10000}

// session is one browser's login: its CSRF token, and for a token login its role.
type session struct {
	id, csrf string
	role     Role // 0 when the authorizer decides on every request
	identity string
	expires  time.Time
	flash    string // a message for the next page, set by an action
}

// sessions holds the logins of one console.
type sessions struct {
	mu    sync.Mutex
	ttl   time.Duration
	all   map[string]*session
	count map[Role]int // sessions in all, by role
}

func newSessions(ttl time.Duration) *sessions {
	return &sessions{ttl: ttl, all: map[string]*session{}, count: map[Role]int{}}
}

func (s *sessions) create(role Role, identity string) *session {
	ss := &session{id: rand.Text(), csrf: rand.Text(), role: role, identity: identity, expires: time.Now().Add(s.ttl)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.count[role] >= maxSessions[role] {
		now := time.Now()
		var oldest *session
		for id, o := range s.all {
			switch {
			case now.After(o.expires):
				delete(s.all, id)
				s.count[o.role]--
			case o.role == role && (oldest == nil || o.expires.Before(oldest.expires)):
				oldest = o
			}
		}
		if s.count[role] >= maxSessions[role] && oldest != nil {
			delete(s.all, oldest.id)
			s.count[role]--
		}
	}
	s.all[ss.id] = ss
	s.count[role]++
	return ss
}

func (s *sessions) get(r *http.Request) *session {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.all[ck.Value]
	if ss != nil && time.Now().After(ss.expires) {
		s.dropLocked(ss)
		ss = nil
	}
	return ss
}

func (s *sessions) drop(ss *session) {
	s.mu.Lock()
	s.dropLocked(ss)
	s.mu.Unlock()
}

func (s *sessions) dropLocked(ss *session) {
	if s.all[ss.id] == ss {
		delete(s.all, ss.id)
		s.count[ss.role]--
	}
}

// takeFlash returns and clears the session's message.
func (s *sessions) takeFlash(ss *session) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := ss.flash
	ss.flash = ""
	return f
}

func (s *sessions) setFlash(ss *session, msg string) {
	s.mu.Lock()
	ss.flash = msg
	s.mu.Unlock()
}

func setSessionCookie(w http.ResponseWriter, r *http.Request, ss *session, ttl time.Duration) {
	// No Path: the browser scopes the cookie to the console's own directory, wherever
	// it is mounted.
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: ss.id, MaxAge: int(ttl.Seconds()),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
}

// visitor is who is asking, as authed found out.
type visitor struct {
	session  *session
	role     Role
	identity string
}

func (v visitor) canChange() bool { return v.role == Admin }

type visitorKey struct{}

func visitorOf(r *http.Request) visitor { v, _ := r.Context().Value(visitorKey{}).(visitor); return v }

// authed lets a request through to next only when it is authenticated, with the
// visitor in its context; a state-changing request must also carry its session's
// CSRF token.
func (h *console) authed(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, ok := h.authenticate(w, r)
		if !ok {
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			if err := r.ParseForm(); err != nil {
				http.Error(w, "console: reading the form: "+err.Error(), http.StatusBadRequest)
				return
			}
			got := r.PostFormValue("csrf")
			if subtle.ConstantTimeCompare([]byte(got), []byte(v.session.csrf)) != 1 {
				http.Error(w, "console: missing or wrong CSRF token: reload the page", http.StatusForbidden)
				return
			}
		}
		if h.o.readOnly && v.role > Viewer {
			v.role = Viewer
		}
		next(w, r.WithContext(context.WithValue(r.Context(), visitorKey{}, v)))
	}
}

// authenticate finds the visitor, or answers the request itself (a redirect to the
// login page, 401 or 403) and returns false.
func (h *console) authenticate(w http.ResponseWriter, r *http.Request) (visitor, bool) {
	ss := h.sessions.get(r)
	if h.o.authorize == nil && !h.o.noAuth { // token logins
		if ss == nil {
			if r.Method == http.MethodGet {
				seeOther(w, "login")
			} else {
				http.Error(w, "console: not logged in", http.StatusUnauthorized)
			}
			return visitor{}, false
		}
		return visitor{session: ss, role: ss.role, identity: ss.identity}, true
	}
	role, identity := Admin, "anonymous"
	if h.o.authorize != nil {
		var ok bool
		role, ok = h.o.authorize(r)
		if !ok {
			http.Error(w, "console: not authorized", http.StatusUnauthorized)
			return visitor{}, false
		}
		if role != Viewer && role != Admin {
			http.Error(w, "console: the authorizer returned no known role", http.StatusForbidden)
			return visitor{}, false
		}
		identity = h.identityOf(r)
	}
	if ss == nil {
		ss = h.sessions.create(0, identity)
		setSessionCookie(w, r, ss, h.o.sessionTTL)
	}
	return visitor{session: ss, role: role, identity: identity}, true
}

func (h *console) identityOf(r *http.Request) string {
	if h.o.identify != nil {
		if id := h.o.identify(r); id != "" {
			return id
		}
	}
	if user, _, ok := r.BasicAuth(); ok && user != "" {
		return user
	}
	return "authorizer"
}

func (h *console) loginPage(w http.ResponseWriter, r *http.Request) {
	if h.o.authorize != nil || h.o.noAuth {
		seeOther(w, "./")
		return
	}
	h.render(w, r, http.StatusOK, "login", nil)
}

func (h *console) login(w http.ResponseWriter, r *http.Request) {
	if h.o.authorize != nil || h.o.noAuth {
		seeOther(w, "./")
		return
	}
	client := clientAddress(r)
	if wait := h.logins.blocked(client); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Round(time.Second).Seconds())))
		h.render(w, r, http.StatusTooManyRequests, "login", map[string]any{"Error": fmt.Sprintf(
			"Too many wrong tokens from your address (%s): try again in %s.", client, wait.Round(time.Second))})
		return
	}
	token := []byte(r.PostFormValue("token"))
	role := Role(0)
	if h.o.adminToken != "" && subtle.ConstantTimeCompare(token, []byte(h.o.adminToken)) == 1 {
		role = Admin
	} else if h.o.viewerToken != "" && subtle.ConstantTimeCompare(token, []byte(h.o.viewerToken)) == 1 {
		role = Viewer
	}
	if role == 0 {
		h.logins.failed(client)
		h.render(w, r, http.StatusUnauthorized, "login", map[string]any{"Error": "That token is not valid."})
		return
	}
	if old := h.sessions.get(r); old != nil {
		h.sessions.drop(old)
	}
	ss := h.sessions.create(role, "token")
	setSessionCookie(w, r, ss, h.o.sessionTTL)
	seeOther(w, "./")
}

func (h *console) logout(w http.ResponseWriter, r *http.Request) {
	h.sessions.drop(visitorOf(r).session)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	seeOther(w, "login")
}

// seeOther redirects to a path relative to the current page, so that the console
// works under any prefix (http.Redirect would resolve it against the stripped path).
func seeOther(w http.ResponseWriter, rel string) {
	w.Header().Set("Location", rel)
	w.WriteHeader(http.StatusSeeOther)
}
