package transport

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// OpenFunc opens a transport from a parsed URL. It must validate the whole URL before
// doing any I/O and return errors wrapping ErrInvalidOption for bad parameters.
type OpenFunc func(ctx context.Context, u *url.URL) (Transport, error)

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

// Lookup returns the opener registered for scheme.
func (r *Registry) Lookup(scheme string) (OpenFunc, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	open, ok := r.openers[strings.ToLower(scheme)]
	return open, ok
}

// Open parses rawURL and opens the transport registered for its scheme. Errors never
// show the URL's password.
func (r *Registry) Open(ctx context.Context, rawURL string) (Transport, error) {
	u, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	open, ok := r.Lookup(u.Scheme)
	if !ok {
		return nil, UnknownSchemeError(u.Scheme, r.Schemes())
	}
	return open(ctx, u)
}

// ParseURL parses a transport URL. The error wraps ErrInvalidOption and does not repeat
// the URL, which may hold a password.
func ParseURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Error repeats the URL; keep only the reason.
		var ue *url.Error
		reason := err
		if errors.As(err, &ue) {
			reason = ue.Err
		}
		return nil, fmt.Errorf("%w: cannot parse transport URL: %v", ErrInvalidOption, reason)
	}
	if u.Scheme == "" {
		return nil, fmt.Errorf("%w: transport URL %q has no scheme (want for example memory:// or kafka://host:9092)", ErrInvalidOption, u.Redacted())
	}
	return u, nil
}

// UnknownSchemeError is the error for a scheme nobody registered; it lists the known
// schemes.
func UnknownSchemeError(scheme string, known []string) error {
	return fmt.Errorf("%w %q (known: %s)", ErrUnknownScheme, scheme, strings.Join(known, ", "))
}
