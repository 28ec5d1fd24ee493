// Package engine runs a client's subscriptions: for each feed of a subscription (its
// topic, replay topic and retry topics) it takes the messages the transport delivers,
// runs the subscription's chain on them and settles each one (ack on success, nack on
// failure), on workers of its own. Drain, pause and health live here too.
//
// On a transport that runs handlers itself (transport.HandlerSubscriber: the memory
// and Kafka transports), no goroutine hand-off lies between the transport and the
// handler: the transport's worker that takes a message from its partition runs the
// chain (serve) and settles the message by the result; its workers are as many as it
// hands out at once (SubscribeOptions.Concurrency per partition, plus messages whose
// in-place retry waits, see transport.Waiter). On other transports one hand-off does:
// the transport's subscription hands a message over its channel to a worker of the
// engine, which runs the chain and settles the message; a feed has as many such
// workers as the transport hands out at once and one spare (a worker is added when the
// last idle one takes a message, and none ends before the drain).
//
// Drain, when Run's context ends: nothing new is taken (the feeds of a transport that
// runs handlers are paused, and stay paused whatever Resume says; a message handed out
// as the drain begins is nacked unhandled), retry waits end at once (Draining closes),
// the handlers in flight finish within the drain time (then Handlers' context ends and
// they are waited for), and only then do the transport's subscriptions end, committing
// what was finished. Run returns once every goroutine the engine started has returned.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/transport"
)

// ErrDrainTimeout is returned by Run when handlers were still running once the drain
// time ran out.
var ErrDrainTimeout = errors.New("pubsub: drain timeout: handlers still running")

// Handler runs a subscription's chain for one message; nil acks it, an error nacks it.
type Handler func(msg *message.Message) error

// Feed is one topic a subscription consumes, with the options the transport
// subscribes it with and the chain its messages run through.
type Feed struct {
	Topic   string
	Options transport.SubscribeOptions
	Handler Handler
}

// Config configures an Engine.
type Config struct {
	Transport transport.Transport
	// Drain is how long in-flight handlers may take to finish once Run's context
	// ends; it is also given to the transport as SubscribeOptions.Drain.
	Drain  time.Duration
	Logger *slog.Logger
	// OnDrain, when set, is called as the drain begins, before anything else.
	OnDrain func()
}

// Engine runs subscriptions. Its methods are safe for concurrent use.
type Engine struct {
	cfg Config

	// handlers is the lifetime of every handler: it ends when the drain time ran out
	// or Close is called.
	handlers       context.Context
	cancelHandlers context.CancelFunc
	draining       chan struct{} // closed when the drain begins
	running        chan struct{} // closed once Run started every subscription
	taking         chan struct{} // closed when workers must take nothing new

	// gate admits the handler calls of transports that run handlers (serve): closed
	// (shut) when the drain begins, so that workers counts every call in flight.
	gate sync.RWMutex
	shut bool

	mu       sync.Mutex
	subs     []*Sub
	started  bool // Run started the subscriptions
	stopping bool // the drain began: nothing starts any more
	feeds    context.Context
	endFeeds context.CancelFunc
	workers  sync.WaitGroup
}

// New returns an engine on cfg.Transport. Nothing runs before Run.
func New(cfg Config) *Engine {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{cfg: cfg, draining: make(chan struct{}), running: make(chan struct{}), taking: make(chan struct{})}
	e.handlers, e.cancelHandlers = context.WithCancel(context.Background())
	e.feeds, e.endFeeds = context.WithCancel(context.Background())
	return e
}

// Handlers returns the context that bounds every handler's life: it ends when the
// drain time ran out or Close was called. The chain gives handlers a context with
// this lifetime, so that the end of a message's delivery does not cut its handler
// short during a drain or after a rebalance.
func (e *Engine) Handlers() context.Context { return e.handlers }

// Draining is closed when the drain begins: retry waits end at once.
func (e *Engine) Draining() <-chan struct{} { return e.draining }

// Running is closed once Run has started every subscription added before it.
func (e *Engine) Running() <-chan struct{} { return e.running }

// Add adds a subscription with its feeds. While Run runs they start at once, and an
// error starting one is returned (the others are ended); before Run, Run starts them.
func (e *Engine) Add(feeds []Feed) (*Sub, error) {
	s := &Sub{e: e}
	for _, f := range feeds {
		s.feeds = append(s.feeds, &feed{spec: f, sub: s})
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopping {
		return nil, fmt.Errorf("engine: %w", transport.ErrClosed)
	}
	if e.started {
		if err := e.startLocked(s); err != nil {
			return nil, err
		}
	}
	e.subs = append(e.subs, s)
	return s, nil
}

// Remove forgets a subscription that was added and never ran (the caller failed to
// register it).
func (e *Engine) Remove(s *Sub) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, x := range e.subs {
		if x == s {
			e.subs = append(e.subs[:i], e.subs[i+1:]...)
			return
		}
	}
}

// Run starts every subscription, consumes until ctx is done, then drains. It returns
// nil after a clean drain, an error wrapping ErrDrainTimeout when handlers were cut
// short, or the error that kept a subscription from starting. Run may be called once.
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	e.started = true
	var err error
	for _, s := range e.subs {
		if err = e.startLocked(s); err != nil {
			break
		}
	}
	e.mu.Unlock()
	if err == nil {
		close(e.running)
		<-ctx.Done()
	}
	if derr := e.drain(); derr != nil && err == nil {
		err = derr
	}
	return err
}

// startLocked subscribes every feed of s and starts its first worker; on an error it
// ends the feeds it started. e.mu is held.
func (e *Engine) startLocked(s *Sub) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.feeds {
		opts := f.spec.Options
		opts.Drain = e.cfg.Drain
		ctx, cancel := context.WithCancel(e.feeds)
		sub, err := e.subscribe(ctx, f, opts)
		if err != nil {
			cancel()
			for _, g := range s.feeds[:i] {
				g.cancel()
				<-g.ts.Done()
			}
			return err
		}
		if s.paused {
			sub.Pause()
		}
		f.ts, f.cancel = sub, cancel
		if !f.served {
			e.spawnLocked(f)
		}
	}
	s.consuming = true
	return nil
}

// subscribe subscribes f: with serve as its handler where the transport runs handlers
// itself, through its channel otherwise.
func (e *Engine) subscribe(ctx context.Context, f *feed, opts transport.SubscribeOptions) (transport.Subscription, error) {
	if hs, ok := e.cfg.Transport.(transport.HandlerSubscriber); ok {
		f.served = true
		return hs.SubscribeHandler(ctx, f.spec.Topic, opts, func(msg *message.Message) error { return e.serve(f, msg) })
	}
	return e.cfg.Transport.Subscribe(ctx, f.spec.Topic, opts)
}

// errDraining nacks, unhandled, a message a transport hands out as the drain begins.
var errDraining = errors.New("engine: draining; the message comes back later")

// serve runs f's chain for msg on the transport's worker that took it; its result
// settles the message. Once the drain began it runs nothing.
func (e *Engine) serve(f *feed, msg *message.Message) error {
	e.gate.RLock()
	if e.shut {
		e.gate.RUnlock()
		return errDraining
	}
	e.workers.Add(1)
	e.gate.RUnlock()
	defer e.workers.Done()
	return e.run(f, msg)
}

// spawnLocked starts a worker of f. e.mu is held.
func (e *Engine) spawnLocked(f *feed) {
	e.workers.Add(1)
	f.idle.Add(1)
	go e.work(f)
}

// spawn adds a worker to f, unless the drain began.
func (e *Engine) spawn(f *feed) {
	e.mu.Lock()
	if !e.stopping {
		e.spawnLocked(f)
	}
	e.mu.Unlock()
}

// work takes f's messages and handles them until the drain begins or the
// subscription ends.
func (e *Engine) work(f *feed) {
	defer e.workers.Done()
	msgs := f.ts.Messages()
	for {
		select {
		case <-e.taking:
			return
		case msg, ok := <-msgs:
			if !ok {
				return
			}
			select {
			case <-e.taking: // the drain began as the message arrived: it comes back later
				msg.Nack()
				return
			default:
			}
			if f.idle.Add(-1) == 0 {
				e.spawn(f)
			}
			e.handle(f, msg)
			f.idle.Add(1)
		}
	}
}

// handle runs the chain for msg and settles it.
func (e *Engine) handle(f *feed, msg *message.Message) {
	if err := e.run(f, msg); err != nil {
		msg.Nack()
		return
	}
	msg.Ack()
}

// run runs f's chain for msg. A panic the chain did not recover is an error: the
// message is nacked.
func (e *Engine) run(f *feed, msg *message.Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			e.cfg.Logger.Error("pubsub: handler panicked outside the chain's recover stage; the message will be redelivered",
				"topic", f.spec.Topic, "message_id", msg.UUID, "panic", fmt.Sprint(r))
			err = fmt.Errorf("engine: handler panicked: %v", r)
		}
	}()
	return f.spec.Handler(msg)
}

// drain stops taking messages, waits for the handlers in flight (cancelling their
// context once the drain time ran out), then ends the transport's subscriptions and
// waits for them to commit.
func (e *Engine) drain() error {
	if e.cfg.OnDrain != nil {
		e.cfg.OnDrain()
	}
	e.mu.Lock()
	e.stopping = true
	subs := slices.Clone(e.subs) // Remove shifts e.subs in place
	e.mu.Unlock()
	e.gate.Lock()
	e.shut = true
	e.gate.Unlock()
	for _, s := range subs {
		s.pauseServed()
	}
	close(e.taking) // first: once Draining is closed, nothing new is taken
	close(e.draining)
	idle := make(chan struct{})
	go func() {
		e.workers.Wait()
		close(idle)
	}()
	var err error
	timer := time.NewTimer(e.cfg.Drain)
	select {
	case <-idle:
	case <-timer.C:
		e.cancelHandlers()
		<-idle
		err = fmt.Errorf("%w after %s", ErrDrainTimeout, e.cfg.Drain)
	}
	timer.Stop()
	e.endFeeds()
	for _, s := range subs {
		s.mu.Lock()
		s.consuming = false
		s.mu.Unlock()
		for _, f := range s.feeds {
			if f.ts != nil {
				<-f.ts.Done()
			}
		}
	}
	return err
}

// Close ends the handlers' context (Handlers). Call it after Run returned, or when
// Run never ran.
func (e *Engine) Close() { e.cancelHandlers() }

// feed is one running feed of a subscription.
type feed struct {
	spec   Feed
	sub    *Sub
	ts     transport.Subscription // nil until started
	cancel context.CancelFunc
	served bool         // the transport runs the chain (serve); no workers of the engine
	idle   atomic.Int32 // workers waiting for a message
}

// Sub is one subscription the engine runs. Its methods are safe for concurrent use.
type Sub struct {
	e     *Engine
	feeds []*feed

	mu        sync.Mutex
	paused    bool
	consuming bool
	draining  bool // pauseServed ran: served feeds stay paused
}

// pauseServed pauses the feeds whose transport runs the chain, as the drain begins, so
// that it stops handing out messages the engine would only nack.
func (s *Sub) pauseServed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.draining = true
	for _, f := range s.feeds {
		if f.ts != nil && f.served {
			f.ts.Pause()
		}
	}
}

// Pause stops the subscription's feeds from taking new messages (the member keeps its
// partitions; handlers in flight finish), also for feeds that start later, until
// Resume.
func (s *Sub) Pause() { s.setPaused(true) }

// Resume undoes Pause.
func (s *Sub) Resume() { s.setPaused(false) }

func (s *Sub) setPaused(paused bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paused = paused
	for _, f := range s.feeds {
		switch {
		case f.ts == nil:
		case paused:
			f.ts.Pause()
		case f.served && s.draining:
			// stays paused (pauseServed): it would hand out messages only to be nacked
		default:
			f.ts.Resume()
		}
	}
}

// Health is the state of one subscription.
type Health struct {
	Consuming, Paused bool
	// Partitions are those of the subscription's first feed (its topic).
	Partitions []transport.PartitionStats
	// Lag counts the unfinished messages of every feed; -1 when unknown.
	Lag          int64
	InFlight     int
	LastProgress time.Time
	// Stalled: the subscription is consuming and not paused, and messages wait while
	// none was finished for longer than stallAfter, or one partition has messages
	// waiting and its position has not moved for that long however busy the others are.
	Stalled bool
	// GroupError is why the topic's member is not in its consumer group now
	// (transport.GroupMember); "" while it is.
	GroupError string
}

// Health reports the subscription's state; stallAfter is how long it may go without
// progress while messages wait before it is stalled.
func (s *Sub) Health(stallAfter time.Duration) Health {
	s.mu.Lock()
	consuming, paused := s.consuming, s.paused
	feeds := make([][]transport.Subscription, len(s.feeds))
	for i, f := range s.feeds {
		if f.ts != nil && consuming {
			feeds[i] = []transport.Subscription{f.ts}
		}
	}
	s.mu.Unlock()
	return HealthOf(consuming, paused, feeds, stallAfter)
}

// HealthOf sums up a subscription from the transport subscriptions each of its feeds
// runs now (feeds[0]: its topic's), for Sub.Health and for subscriptions that a
// Watermill Router runs.
func HealthOf(consuming, paused bool, feeds [][]transport.Subscription, stallAfter time.Duration) Health {
	h := Health{Consuming: consuming, Paused: paused}
	lagKnown := true
	for i, running := range feeds {
		for _, ts := range running {
			if g, ok := ts.(transport.GroupMember); ok && i == 0 && h.GroupError == "" {
				if err := g.GroupError(); err != nil {
					h.GroupError = err.Error()
				}
			}
			for _, p := range ts.Stats() {
				if i == 0 {
					h.Partitions = append(h.Partitions, p)
				}
				h.InFlight += p.InFlight
				if p.LastProgress.After(h.LastProgress) {
					h.LastProgress = p.LastProgress
				}
				if lag := p.Lag(); lag >= 0 {
					h.Lag += lag
				} else if p.Buffered > 0 || p.InFlight > 0 {
					lagKnown = false
				}
			}
		}
	}
	if !lagKnown {
		h.Lag = -1
	}
	waiting := h.Lag > 0 || h.Lag < 0 && h.InFlight > 0
	stalled := waiting && time.Since(h.LastProgress) > stallAfter
	for _, p := range h.Partitions {
		stalled = stalled || partitionStalled(p, stallAfter)
	}
	h.Stalled = h.Consuming && !h.Paused && stalled
	return h
}

// partitionStalled reports whether messages of p wait (unfinished below its end, or
// fetched and unfinished) and its position has not moved for longer than after: one
// stuck partition is a stall even while its siblings make progress.
func partitionStalled(p transport.PartitionStats, after time.Duration) bool {
	waiting := p.Lag() > 0 || p.Buffered > 0 || p.InFlight > 0
	return waiting && !p.Paused && time.Since(p.LastProgress) > after
}
