// Package console is a web console for the dead letters and subscriptions of a
// pubsub.Client: an http.Handler a service mounts on its admin port, as it would
// net/http/pprof. Operators list and filter dead letters, group them by error, read
// one (payload, headers, reason, attempts, times), replay or discard them, edit and
// replay one, pause and resume a subscription and follow a correlation id through the
// client's History. Its pages are plain HTML forms served from files embedded in the
// binary; it runs no server and keeps no global state.
//
// Authentication is required: Handler refuses to build without WithToken,
// WithAuthorizer or an explicit WithoutAuth. Every change is a POST carrying a CSRF
// token bound to the browser's session, behind http.CrossOriginProtection.
package console

import (
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"time"

	"github.com/pubsubkit/pubsub"
)

// Role is what a person may do in the console.
type Role int

const (
	// Viewer sees everything and changes nothing.
	Viewer Role = iota + 1
	// Admin also replays, discards, pauses and resumes.
	Admin
)

// String returns "viewer" or "admin".
func (r Role) String() string {
	switch r {
	case Viewer:
		return "viewer"
	case Admin:
		return "admin"
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// ErrNoAuth is returned by Handler when no way to authenticate was chosen.
var ErrNoAuth = errors.New("console: authentication required: use WithToken, WithAuthorizer or WithoutAuth")

// Option configures Handler.
type Option func(*options)

type options struct {
	adminToken, viewerToken string
	authorize               func(*http.Request) (Role, bool)
	identify                func(*http.Request) string
	noAuth                  bool
	readOnly                bool
	sessionTTL              time.Duration
	errs                    []error
}

// WithToken lets in whoever types token on the login page, as an admin (a viewer
// under ReadOnly). Their replays and discards are recorded as by "token".
func WithToken(token string) Option {
	return func(o *options) {
		if token == "" {
			o.errs = append(o.errs, errors.New("WithToken: empty token"))
		}
		o.adminToken = token
	}
}

// WithViewerToken lets in whoever types token on the login page, as a viewer.
func WithViewerToken(token string) Option {
	return func(o *options) {
		if token == "" {
			o.errs = append(o.errs, errors.New("WithViewerToken: empty token"))
		}
		o.viewerToken = token
	}
}

// WithAuthorizer authenticates every request with authorize, which returns the
// person's role and whether they may use the console at all: the service's own
// authentication (a reverse proxy's header, a client certificate, a cookie of its own).
// The identity recorded with their replays and discards is WithIdentity's, else the
// request's basic-auth user name, else "authorizer".
func WithAuthorizer(authorize func(*http.Request) (Role, bool)) Option {
	return func(o *options) {
		if authorize == nil {
			o.errs = append(o.errs, errors.New("WithAuthorizer(nil)"))
		}
		o.authorize = authorize
	}
}

// WithIdentity names the person behind a request authorized by WithAuthorizer, for
// the record of who replayed or discarded a letter.
func WithIdentity(identify func(*http.Request) string) Option {
	return func(o *options) { o.identify = identify }
}

// WithoutAuth lets everyone in as an admin (recorded as "anonymous"): only for a port
// nobody else can reach.
func WithoutAuth() Option { return func(o *options) { o.noAuth = true } }

// ReadOnly forbids every change, whatever the role: no replay, discard, pause or
// resume, and no buttons for them.
func ReadOnly() Option { return func(o *options) { o.readOnly = true } }

// WithSessionTTL sets how long a login lasts; the default is 12 hours.
func WithSessionTTL(d time.Duration) Option {
	return func(o *options) {
		if d <= 0 {
			o.errs = append(o.errs, fmt.Errorf("WithSessionTTL(%s): must be positive", d))
		}
		o.sessionTTL = d
	}
}

// Handler returns the console of c. Mount it under a prefix with http.StripPrefix,
// for example
//
//	h, err := console.Handler(c, console.WithToken(os.Getenv("CONSOLE_TOKEN")))
//	mux.Handle("/pubsub/", http.StripPrefix("/pubsub", h))
//
// Its links are relative, so any prefix works. It returns ErrNoAuth unless WithToken,
// WithViewerToken, WithAuthorizer or WithoutAuth is given, and an error wrapping
// pubsub.ErrInvalidOption for a bad option. The handler is safe for concurrent use.
func Handler(c *pubsub.Client, opts ...Option) (http.Handler, error) {
	if c == nil {
		return nil, fmt.Errorf("console: %w: Handler(nil client)", pubsub.ErrInvalidOption)
	}
	o := options{sessionTTL: 12 * time.Hour}
	for _, opt := range opts {
		opt(&o)
	}
	if err := errors.Join(o.errs...); err != nil {
		return nil, fmt.Errorf("console: %w: %w", pubsub.ErrInvalidOption, err)
	}
	modes := 0
	for _, on := range []bool{o.adminToken != "" || o.viewerToken != "", o.authorize != nil, o.noAuth} {
		if on {
			modes++
		}
	}
	switch {
	case modes == 0:
		return nil, ErrNoAuth
	case modes > 1:
		return nil, fmt.Errorf("console: %w: choose one of WithToken/WithViewerToken, WithAuthorizer and WithoutAuth", pubsub.ErrInvalidOption)
	case o.adminToken != "" && o.adminToken == o.viewerToken:
		return nil, fmt.Errorf("console: %w: the viewer token is the admin token", pubsub.ErrInvalidOption)
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	static, err := fs.Sub(files, "static")
	if err != nil {
		return nil, err
	}
	h := &console{c: c, o: o, pages: pages, sessions: newSessions(o.sessionTTL), logins: newThrottle(), rates: newRates()}
	mux := http.NewServeMux()
	mux.Handle("GET /static/{file...}", filesOnly(static))
	mux.HandleFunc("GET /login", h.loginPage)
	mux.HandleFunc("POST /login", h.login)
	mux.HandleFunc("POST /logout", h.authed(h.logout))
	mux.HandleFunc("GET /{$}", h.authed(h.index))
	mux.HandleFunc("GET /subscription", h.authed(h.subscription))
	mux.HandleFunc("GET /letter", h.authed(h.letter))
	mux.HandleFunc("GET /history", h.authed(h.history))
	mux.HandleFunc("POST /action", h.authed(h.action))
	return secured(http.NewCrossOriginProtection().Handler(mux)), nil
}

// console is the handler's state: its client, options, pages and sessions.
type console struct {
	c        *pubsub.Client
	o        options
	pages    map[string]*template.Template
	sessions *sessions
	logins   *throttle // wrong tokens by client address
	rates    *rates
}

// filesOnly serves the files of fsys named by the path's {file...}: no directory
// listings, no redirects; anything else is 404.
func filesOnly(fsys fs.FS) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("file")
		if st, err := fs.Stat(fsys, name); name == "" || !fs.ValidPath(name) || err != nil || st.IsDir() {
			http.NotFound(w, r)
			return
		}
		http.ServeFileFS(w, r, fsys, name)
	})
}

// contentSecurityPolicy allows the console's own style sheet and nothing else: no
// script, no frame, forms posting only to the console.
const contentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// secured adds the security headers to every response.
func secured(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}
