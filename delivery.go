package pubsub

import (
	"fmt"
	"time"

	"github.com/pubsubkit/pubsub/middleware"
)

// Delivery is a subscription's delivery policy, after the Knative delivery spec: how
// often a failed message is retried, how long to wait between attempts, how long one
// attempt may take, where it goes when retries run out, and whether the messages
// behind it wait.
//
// The zero Delivery retries nothing, sets no timeout, dead-letters to
// "<topic>.<group>.dlq" and keeps order: a failed message is dead-lettered at once and
// the next one is handled.
type Delivery struct {
	// Retry is how many times a failed message is handled again after its first
	// attempt: Retry 3 makes at most 4 attempts.
	Retry int
	// BackoffPolicy and BackoffDelay space the retries: retry n (1-based) waits
	// BackoffDelay·2ⁿ (BackoffExponential, the default) or BackoffDelay·n
	// (BackoffLinear). Retry 3, exponential, BackoffDelay 5s waits 10s, 20s, 40s.
	BackoffPolicy BackoffPolicy
	BackoffDelay  time.Duration
	// MaxBackoff caps every wait; 0 means no cap but MaxDeliveryWait.
	MaxBackoff time.Duration
	// Timeout bounds each attempt: the handler's context ends Timeout after the
	// attempt began, and a retry gets a fresh one (for SubscribeBatch, each call of
	// the batch handler). 0 means no timeout.
	Timeout time.Duration
	// DeadLetterTopic receives the messages that failed for good; "" means
	// "<topic>.<group>.dlq" (DeadLetterTopicName).
	DeadLetterTopic string
	// Ordering chooses where retries happen: Ordered (the default) retries in place
	// and holds back the messages behind the failed one in its partition (with
	// Concurrency, only those of its key); Unordered moves the failed message to the
	// subscription's retry topics and lets the messages behind it go on.
	Ordering Ordering
	// Concurrency is how many messages of one partition are handled at once; 0 or 1:
	// one at a time, in order. Ordered: up to Concurrency messages of different keys
	// at once, each key one at a time in offset order, and an in-place retry holds
	// back only its own key (messages without a key have no order among themselves).
	// Unordered: up to Concurrency messages of any keys. The committed position of a
	// partition stays at its lowest unfinished message, so a crash redoes at most the
	// messages in flight. Above 1 it needs a transport with Capabilities.Concurrency
	// (memory and Kafka).
	Concurrency int
}

// BackoffPolicy is how the wait grows from one retry to the next.
type BackoffPolicy int

const (
	// BackoffExponential: retry n waits BackoffDelay·2ⁿ.
	BackoffExponential BackoffPolicy = iota
	// BackoffLinear: retry n waits BackoffDelay·n.
	BackoffLinear
)

func (p BackoffPolicy) String() string {
	switch p {
	case BackoffExponential:
		return "exponential"
	case BackoffLinear:
		return "linear"
	default:
		return fmt.Sprintf("BackoffPolicy(%d)", int(p))
	}
}

// Ordering is where a subscription retries a failed message.
type Ordering int

const (
	// Ordered retries in place: the messages behind the failed one in its partition
	// (on the memory transport, in its group) wait until it succeeds or is
	// dead-lettered.
	Ordered Ordering = iota
	// Unordered publishes the failed message to the subscription's retry topic for
	// its attempt, "<topic>.<group>.retry.<n>", to be handled again, in the same
	// group only, once its backoff has passed; the messages behind it go on.
	Unordered
)

func (o Ordering) String() string {
	switch o {
	case Ordered:
		return "ordered"
	case Unordered:
		return "unordered"
	default:
		return fmt.Sprintf("Ordering(%d)", int(o))
	}
}

// Backoff returns the wait before retry n (1-based) under d.
func (d Delivery) Backoff(retry int) time.Duration {
	return d.backoff()(retry)
}

func (d Delivery) backoff() middleware.Backoff {
	limit := d.MaxBackoff
	if limit == 0 {
		limit = MaxDeliveryWait
	}
	if d.BackoffPolicy == BackoffLinear {
		return middleware.LinearBackoff(d.BackoffDelay, limit)
	}
	return middleware.ExponentialBackoff(d.BackoffDelay, limit)
}

// Limits on Delivery that no sensible policy reaches. An Unordered subscription has a
// topic per retry, so a retry count in the thousands is a typo; a wait or an attempt
// longer than a day is one, and a wait longer than the retry topic's retention
// (Kafka's default is seven days) would lose the message it holds.
const (
	MaxDeliveryRetry       = 100
	MaxDeliveryConcurrency = 4096
	MaxDeliveryWait        = 7 * 24 * time.Hour // MaxBackoff, and the longest any retry waits
	MaxDeliveryDelay       = 24 * time.Hour     // BackoffDelay
	MaxDeliveryTimeout     = 24 * time.Hour     // Timeout
)

func (d Delivery) validate() error {
	var bad []string
	if d.Retry < 0 {
		bad = append(bad, fmt.Sprintf("Retry %d is negative", d.Retry))
	}
	if d.Retry > MaxDeliveryRetry {
		bad = append(bad, fmt.Sprintf("Retry %d is over %d", d.Retry, MaxDeliveryRetry))
	}
	if d.Concurrency < 0 || d.Concurrency > MaxDeliveryConcurrency {
		bad = append(bad, fmt.Sprintf("Concurrency %d is not between 0 and %d", d.Concurrency, MaxDeliveryConcurrency))
	}
	for _, v := range []struct {
		name      string
		got, over time.Duration
	}{{"BackoffDelay", d.BackoffDelay, MaxDeliveryDelay}, {"MaxBackoff", d.MaxBackoff, MaxDeliveryWait}, {"Timeout", d.Timeout, MaxDeliveryTimeout}} {
		if v.got > v.over {
			bad = append(bad, fmt.Sprintf("%s %v is over %v", v.name, v.got, v.over))
		}
	}
	if d.BackoffPolicy != BackoffExponential && d.BackoffPolicy != BackoffLinear {
		bad = append(bad, fmt.Sprintf("unknown %v", d.BackoffPolicy))
	}
	if d.BackoffDelay < 0 || d.MaxBackoff < 0 || d.Timeout < 0 {
		bad = append(bad, "BackoffDelay, MaxBackoff and Timeout must not be negative")
	}
	if d.Ordering != Ordered && d.Ordering != Unordered {
		bad = append(bad, fmt.Sprintf("unknown %v", d.Ordering))
	}
	if d.DeadLetterTopic != "" {
		if err := validName("dead-letter topic", d.DeadLetterTopic); err != nil {
			bad = append(bad, err.Error())
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("pubsub: %w: Delivery: %v", ErrInvalidOption, bad)
	}
	return nil
}
