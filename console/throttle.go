package console

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// Failed logins are limited per client address: loginBurst wrong tokens at once, then
// one more every loginRefill.
const (
	loginBurst  = 10
	loginRefill = 6 * time.Second
	// maxThrottled bounds the addresses remembered; past it, the ones whose
	// allowance is full again are forgotten, then the oldest.
	maxThrottled = 10000
)

// throttle counts the wrong tokens of each client address: a token bucket per address.
type throttle struct {
	mu    sync.Mutex
	addrs map[string]*bucket
}

type bucket struct {
	tokens float64   // wrong tokens still allowed
	at     time.Time // when tokens was last brought up to date
	last   time.Time // the last wrong token
}

func newThrottle() *throttle { return &throttle{addrs: map[string]*bucket{}} }

// refill brings b up to now.
func (b *bucket) refill(now time.Time) {
	b.tokens = min(loginBurst, b.tokens+float64(now.Sub(b.at))/float64(loginRefill))
	b.at = now
}

// blocked returns how long addr must wait before it may try a token again; 0 when it
// may now.
func (t *throttle) blocked(addr string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	b, ok := t.addrs[addr]
	if !ok {
		return 0
	}
	now := time.Now()
	b.refill(now)
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) * float64(loginRefill))
}

// failed records a wrong token from addr.
func (t *throttle) failed(addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	b, ok := t.addrs[addr]
	if !ok {
		if len(t.addrs) >= maxThrottled {
			t.forgetLocked(now)
		}
		b = &bucket{tokens: loginBurst, at: now}
		t.addrs[addr] = b
	}
	b.refill(now)
	b.tokens = max(b.tokens-1, 0)
	b.last = now
}

// forgetLocked makes room: it drops the addresses whose allowance is full again, and
// if none is, the one that failed longest ago.
func (t *throttle) forgetLocked(now time.Time) {
	var oldest string
	for addr, b := range t.addrs {
		b.refill(now)
		if b.tokens >= loginBurst {
			delete(t.addrs, addr)
		} else if oldest == "" || b.last.Before(t.addrs[oldest].last) {
			oldest = addr
		}
	}
	if len(t.addrs) >= maxThrottled {
		delete(t.addrs, oldest)
	}
}

// clientAddress is the address a request came from, without its port: the address of
// the connection (behind a reverse proxy, the proxy's: use WithAuthorizer there).
func clientAddress(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}
