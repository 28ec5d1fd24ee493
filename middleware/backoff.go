package middleware

import "time"

// Backoff returns how long to wait before retry n, counted from 1.
type Backoff func(retry int) time.Duration

// ExponentialBackoff is the Knative delivery spec's exponential policy: retry n waits
// delay·2ⁿ, so delay 5s waits 10s, 20s, 40s. A positive max caps every wait.
func ExponentialBackoff(delay, max time.Duration) Backoff {
	return func(retry int) time.Duration {
		d := delay
		for range retry {
			if max > 0 && d >= max || d > time.Duration(1<<62) {
				break // capped, or about to overflow
			}
			d *= 2
		}
		return capped(d, max)
	}
}

// LinearBackoff is the Knative delivery spec's linear policy: retry n waits delay·n.
// A positive max caps every wait.
func LinearBackoff(delay, max time.Duration) Backoff {
	return func(retry int) time.Duration {
		if delay > 0 && time.Duration(retry) > time.Duration(1<<62)/delay {
			return capped(time.Duration(1<<62), max)
		}
		return capped(delay*time.Duration(retry), max)
	}
}

func capped(d, max time.Duration) time.Duration {
	if max > 0 && d > max {
		return max
	}
	return d
}
