package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// OpenFunc opens a transport from a parsed URL. It must validate the whole URL before
// doing any I/O, return errors wrapping ErrInvalidOption for bad parameters, and never
// put a password, or any part of the URL's user information, in an error.
type OpenFunc func(ctx context.Context, u *url.URL, o OpenOptions) (Transport, error)

// OpenOptions is what an OpenFunc gets besides the URL.
type OpenOptions struct {
	// Logger receives the transport's own records (reconnects, warnings). Never nil.
	Logger *slog.Logger
}

// Registry maps URL schemes ("memory", "kafka") to the functions that open them. The
// zero value is an empty registry ready to use. A Registry is safe for concurrent use;
// registration does no I/O.
type Registry struct {
	mu      sync.RWMutex
	openers map[string]OpenFunc
}

// Register makes open the opener for scheme, replacing any earlier one. The scheme is
// matched case-insensitively.
func (r *Registry) Register(scheme string, open OpenFunc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.openers == nil {
		r.openers = make(map[string]OpenFunc)
	}
	r.openers[strings.ToLower(scheme)] = open
}

// Schemes returns the registered schemes, sorted.
func (r *Registry) Schemes() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	schemes := make([]string, 0, len(r.openers))
	for s := range r.openers {
		schemes = append(schemes, s)
	}
	slices.Sort(schemes)
	return schemes
}

// Open parses rawURL and opens the transport registered for its scheme. A nil
// o.Logger discards. The error for an unknown scheme wraps ErrUnknownScheme and lists
// the known ones; errors never show the URL's password.
func (r *Registry) Open(ctx context.Context, rawURL string, o OpenOptions) (Transport, error) {
	u, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	r.mu.RLock()
	open, ok := r.openers[strings.ToLower(u.Scheme)]
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownScheme, u.Scheme, strings.Join(r.Schemes(), ", "))
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	t, err := open(ctx, u, o)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", RedactURL(rawURL), err)
	}
	return t, nil
}

// parseURL parses a transport URL. Its error wraps ErrInvalidOption and repeats no part
// of the URL that could be a password.
func parseURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		if strings.Contains(rawURL, "@") {
			// url.Error, and the reasons it wraps ("invalid port ..."), quote parts of the
			// URL, which here may be parts of a password.
			return nil, fmt.Errorf("%w: cannot parse transport URL %s: characters such as / ? # in its user part must be percent-encoded, and a password belongs in the environment, not the URL",
				ErrInvalidOption, RedactURL(rawURL))
		}
		var ue *url.Error
		reason := err
		if errors.As(err, &ue) {
			reason = ue.Err
		}
		return nil, fmt.Errorf("%w: cannot parse transport URL %s: %v", ErrInvalidOption, RedactURL(rawURL), reason)
	}
	if u.Scheme == "" {
		return nil, fmt.Errorf("%w: transport URL %s has no scheme (want for example memory:// or kafka://host:9092)", ErrInvalidOption, RedactURL(rawURL))
	}
	return u, nil
}

// RedactURL returns rawURL with its secrets replaced by "xxxxx": the password, if it
// may hold one (everything after the first ':' of the user part and before the last
// '@' of the URL; without "//", the whole user part), and the value of every query
// parameter whose name looks like a secret's (SecretParam). It works on text that
// url.Parse refuses or misreads (an opaque "kafka:alice:pw@host", a password holding
// '/', '?', '#' or '@'), so that an error, a log line or a console may show a URL
// safely. It may redact more than the secrets, never less.
func RedactURL(rawURL string) string {
	red := redactUser(rawURL)
	start := strings.LastIndexByte(red, '@') + 1 // the query follows the user part
	q := strings.IndexByte(red[start:], '?')
	if q < 0 {
		return red
	}
	q += start + 1
	end := len(red)
	if f := strings.IndexByte(red[q:], '#'); f >= 0 {
		end = q + f
	}
	params := strings.FieldsFunc(red[q:end], func(r rune) bool { return r == '&' || r == ';' })
	for i, p := range params {
		name, _, hasValue := strings.Cut(p, "=")
		if plain, err := url.QueryUnescape(name); err == nil {
			name = plain
		}
		if hasValue && SecretParam(name) {
			params[i] = p[:strings.IndexByte(p, '=')] + "=xxxxx"
		}
	}
	return red[:q] + strings.Join(params, "&") + red[end:]
}

// secretWords are what SecretParam looks for in a parameter's name.
var secretWords = []string{"token", "passw", "pwd", "secret", "key", "sasl", "credential", "auth", "signature", "private", "session", "cookie", "bearer", "jwt"}

// SecretParam reports whether a URL query parameter named name may hold a secret, so
// that RedactURL hides its value: its name holds, in any case, one of token, passw,
// pwd, secret, key, sasl, credential, auth, signature, private, session, cookie,
// bearer or jwt, and does not end in "_env" (which names an environment variable that
// holds the secret, as kafka's sasl_password_env does).
func SecretParam(name string) bool {
	name = strings.ToLower(name)
	if strings.HasSuffix(name, "_env") {
		return false
	}
	for _, w := range secretWords {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

// redactUser is rawURL with the password of its user part, if it may hold one,
// replaced by "xxxxx".
func redactUser(rawURL string) string {
	at := strings.LastIndexByte(rawURL, '@')
	if at < 0 {
		return rawURL
	}
	colon := strings.IndexByte(rawURL, ':') // the end of the scheme, if there is one
	authority := -1                         // where "//" puts the user part
	switch {
	case strings.HasPrefix(rawURL, "//"):
		authority = 2
	case colon >= 0 && strings.HasPrefix(rawURL[colon+1:], "//"):
		authority = colon + 3
	}
	if authority >= 0 && authority <= at {
		user := rawURL[authority:at]
		if c := strings.IndexByte(user, ':'); c >= 0 {
			return rawURL[:authority] + user[:c] + ":xxxxx" + rawURL[at:]
		}
		return rawURL // a user without a password
	}
	start := 0
	if colon >= 0 && colon < at {
		start = colon + 1
	}
	return rawURL[:start] + "xxxxx" + rawURL[at:]
}
