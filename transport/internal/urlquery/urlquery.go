// Package urlquery reads a transport URL's query parameters into typed values and
// reports, in one error, every parameter that is malformed or unknown, so that every
// transport URL in the module is validated the same way.
package urlquery

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pubsubkit/pubsub/transport"
)

// Query reads the parameters of one URL:
//
//	q := urlquery.New(u)
//	cfg.MaxRetained = q.Int("max_retained", cfg.MaxRetained)
//	if err := q.Err(); err != nil { ... }
//
// A Query is not safe for concurrent use.
type Query struct {
	values url.Values
	known  []string
	errs   []error
	cut    bool // the parameters hold '@': a password with '?' in it may have been cut there
}

// New returns a Query over u's query string.
func New(u *url.URL) *Query {
	return &Query{values: u.Query(), cut: strings.ContainsRune(u.RawQuery, '@') || strings.ContainsRune(u.Fragment, '@')}
}

// Has reports whether the parameter name is given.
func (q *Query) Has(name string) bool {
	_, ok := q.values[name]
	return ok
}

// String returns the parameter name's value, or def when it is absent.
func (q *Query) String(name, def string) string {
	v, ok := q.take(name)
	if !ok {
		return def
	}
	return v
}

// Int returns the parameter name as an int, or def when it is absent.
func (q *Query) Int(name string, def int) int {
	v, ok := q.take(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		q.errs = append(q.errs, fmt.Errorf("parameter %s=%q is not a whole number", name, v))
		return def
	}
	return n
}

// Bool returns the parameter name as a bool ("true", "false", "1", "0"), or def when
// it is absent.
func (q *Query) Bool(name string, def bool) bool {
	v, ok := q.take(name)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		q.errs = append(q.errs, fmt.Errorf("parameter %s=%q is not true or false", name, v))
		return def
	}
	return b
}

// Duration returns the parameter name as a time.Duration ("250ms", "5s"), or def when
// it is absent.
func (q *Query) Duration(name string, def time.Duration) time.Duration {
	v, ok := q.take(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		q.errs = append(q.errs, fmt.Errorf("parameter %s=%q is not a duration such as 500ms or 5s", name, v))
		return def
	}
	return d
}

// Err returns an error wrapping transport.ErrInvalidOption that names every malformed parameter
// and every unknown one, with the list of accepted names; nil when all is well.
func (q *Query) Err() error {
	if q.cut {
		// Names and values may be pieces of a password: none is quoted.
		return fmt.Errorf("%w: the URL's parameters hold '@': percent-encode it (%%40) in a value; if a password with '?' in it cut the URL there, put the password in the environment instead",
			transport.ErrInvalidOption)
	}
	errs := q.errs
	var unknown []string
	for name := range q.values {
		if !slices.Contains(q.known, name) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		known := slices.Clone(q.known)
		slices.Sort(known)
		errs = append(errs, fmt.Errorf("unknown parameter %s (accepted: %s)",
			strings.Join(unknown, ", "), strings.Join(known, ", ")))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", transport.ErrInvalidOption, errors.Join(errs...))
}

func (q *Query) take(name string) (string, bool) {
	q.known = append(q.known, name)
	vs, ok := q.values[name]
	if !ok {
		return "", false
	}
	if len(vs) > 1 {
		q.errs = append(q.errs, fmt.Errorf("parameter %s is given %d times", name, len(vs)))
	}
	return vs[len(vs)-1], true
}
