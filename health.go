package pubsub

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/pubsubkit/pubsub/middleware"
	"github.com/pubsubkit/pubsub/transport"
)

// DefaultStallAfter is how long a subscription may make no progress while messages
// wait for it before Health calls it stalled, unless WithStallAfter says otherwise.
const DefaultStallAfter = 5 * time.Minute

// WithStallAfter sets how long a subscription, or one partition of it, may go without
// progress (no message finished) while messages wait for it before Health reports it
// stalled and the liveness handler fails. A paused subscription is never stalled, and
// the time it was paused does not count. The default is DefaultStallAfter.
func WithStallAfter(d time.Duration) Option {
	return func(o *options) {
		if d <= 0 {
			o.bad("WithStallAfter(%s): must be positive", d)
			return
		}
		o.stallAfter = d
	}
}

// SubscriptionHealth is the state of one subscription of a client.
type SubscriptionHealth struct {
	Topic, Group string
	// Consuming is true once the subscription takes messages (Run started it); a
	// standby member of a group whose partitions another member has is consuming too.
	Consuming bool
	// Paused is true between Pause and Resume.
	Paused bool
	// Partitions are the partitions of the topic this member consumes.
	Partitions []transport.PartitionStats
	// Lag is how many messages of those partitions, and of the subscription's retry
	// and replay topics, the group has not finished; -1 when unknown.
	Lag int64
	// InFlight counts messages handed to the handler and not finished.
	InFlight int
	// LastProgress is when a message was last finished (or the subscription started,
	// or was resumed after a pause).
	LastProgress time.Time
	// Stalled is true when, while not paused, messages wait and none was finished
	// for longer than the stall time (WithStallAfter), or one partition has messages
	// waiting and its position has not moved for that long, however busy the others
	// are: the liveness handler fails. The time paused does not count.
	Stalled bool
	// GroupError says why this member is not in its consumer group now, such as a
	// group whose members share no balancer with it (Kafka's
	// INCONSISTENT_GROUP_PROTOCOL: it consumes nothing while they hold every
	// partition); "" while it is a member. The transport logs it at error level too.
	GroupError string `json:",omitempty"`
}

// Health reports every subscription of the client, sorted by topic and group. It is
// safe for concurrent use and cheap enough for a probe.
func (c *Client) Health() []SubscriptionHealth {
	c.mu.Lock()
	subs := make([]*subscription, 0, len(c.subs))
	for _, s := range c.subs {
		subs = append(subs, s)
	}
	c.mu.Unlock()
	out := make([]SubscriptionHealth, 0, len(subs))
	for _, s := range subs {
		h := s.run.Health(c.opts.stallAfter)
		out = append(out, SubscriptionHealth{Topic: s.topic, Group: s.group, Consuming: h.Consuming, Paused: h.Paused,
			Partitions: h.Partitions, Lag: h.Lag, InFlight: h.InFlight, LastProgress: h.LastProgress, Stalled: h.Stalled,
			GroupError: h.GroupError})
	}
	slices.SortFunc(out, func(a, b SubscriptionHealth) int {
		return strings.Compare(a.Topic+"\x00"+a.Group, b.Topic+"\x00"+b.Group)
	})
	return out
}

// Pause stops the subscription (topic, group) from taking new messages: the client
// stays in its group and keeps its partitions, the handlers in flight finish, and the
// subscription is not stalled while paused. It holds until Resume, also for feeds
// that start later. An unknown subscription is an error wrapping
// ErrUnknownSubscription.
func (c *Client) Pause(topic, group string) error { return c.setPaused(topic, group, true) }

// Resume undoes Pause.
func (c *Client) Resume(topic, group string) error { return c.setPaused(topic, group, false) }

func (c *Client) setPaused(topic, group string, paused bool) error {
	c.mu.Lock()
	s, ok := c.subs[topic+"/"+group]
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("pubsub: %w: %q in group %q", ErrUnknownSubscription, topic, group)
	}
	if paused {
		s.run.Pause()
	} else {
		s.run.Resume()
	}
	c.opts.logger.Info("pubsub: subscription "+map[bool]string{true: "paused", false: "resumed"}[paused], "topic", topic, "group", group)
	return nil
}

// ReadinessHandler answers Kubernetes' readiness probe ("send me traffic"): 200 once
// Run consumes every subscription, 503 before that, while the client drains, and
// after Close. The body is the JSON of Health.
func (c *Client) ReadinessHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		health := c.Health()
		c.mu.Lock()
		running := c.state.get() == stateRunning
		c.mu.Unlock()
		ready := running
		select {
		case <-c.Running():
		default:
			ready = false
		}
		for _, h := range health {
			ready = ready && h.Consuming
		}
		writeHealth(w, ready, health)
	})
}

// LivenessHandler answers Kubernetes' liveness probe ("restart me" when it fails):
// 503 while a subscription is stalled (messages wait and none was finished for longer
// than WithStallAfter, or one of its partitions has messages waiting and has not
// moved for that long; see SubscriptionHealth.Stalled), 200 otherwise, paused
// subscriptions included. The body is the
// JSON of Health.
func (c *Client) LivenessHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		health := c.Health()
		live := true
		for _, h := range health {
			live = live && !h.Stalled
		}
		writeHealth(w, live, health)
	})
}

func writeHealth(w http.ResponseWriter, ok bool, health []SubscriptionHealth) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(struct {
		OK            bool                 `json:"ok"`
		Subscriptions []SubscriptionHealth `json:"subscriptions"`
	}{ok, health})
}

// registerLagGauge reports each partition's lag as the observable gauge
// messaging.client.consumer.lag ({message}), with the semantic conventions'
// attributes messaging.destination.name, messaging.consumer.group.name and
// messaging.destination.partition.id. The conventions (v1.44) define no lag metric;
// the name follows their messaging.client namespace.
func (c *Client) registerLagGauge() error {
	mp := c.opts.meterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	meter := mp.Meter(middleware.InstrumentationName)
	gauge, err := meter.Int64ObservableGauge("messaging.client.consumer.lag",
		metric.WithDescription("Messages of a partition the consumer group has not finished."),
		metric.WithUnit("{message}"))
	if err != nil {
		return fmt.Errorf("pubsub: creating the lag gauge: %w", err)
	}
	c.lagGauge, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for _, h := range c.Health() {
			for _, p := range h.Partitions {
				if lag := p.Lag(); lag >= 0 {
					o.ObserveInt64(gauge, lag, metric.WithAttributes(
						attribute.String("messaging.destination.name", h.Topic),
						attribute.String("messaging.consumer.group.name", h.Group),
						attribute.String("messaging.destination.partition.id", strconv.Itoa(int(p.Partition)))))
				}
			}
		}
		return nil
	}, gauge)
	if err != nil {
		return fmt.Errorf("pubsub: registering the lag gauge: %w", err)
	}
	return nil
}

// WithEventHistory keeps the last n events of the client's messages (without their
// payloads), for History: an operator follows a correlation id through what this
// client saw (the console does). Without it History returns nothing.
func WithEventHistory(n int) Option {
	return func(o *options) {
		if n < 1 {
			o.bad("WithEventHistory(%d): must be positive", n)
			return
		}
		o.history = n
	}
}

// History returns the events of the conversation cid among the last ones the client
// kept (WithEventHistory), oldest first; with an empty cid, all of them.
func (c *Client) History(cid string) []Event {
	if c.obs.history == nil {
		return nil
	}
	return c.obs.history.of(cid)
}

// history is a ring of the last events, an Observer.
type history struct {
	mu     sync.Mutex
	events []Event
	next   int
	full   bool
}

func newHistory(n int) *history { return &history{events: make([]Event, n)} }

func (h *history) Observe(_ context.Context, e Event) {
	e.Message = nil // payloads would hold memory for every event kept
	h.mu.Lock()
	h.events[h.next] = e
	h.next = (h.next + 1) % len(h.events)
	h.full = h.full || h.next == 0
	h.mu.Unlock()
}

func (h *history) of(cid string) []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Event
	start, n := 0, h.next
	if h.full {
		start, n = h.next, len(h.events)
	}
	for i := range n {
		e := h.events[(start+i)%len(h.events)]
		if cid == "" || e.CorrelationID == cid {
			out = append(out, e)
		}
	}
	return out
}
