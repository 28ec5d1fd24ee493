package pubsub

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/metric"

	"github.com/pubsubkit/pubsub/internal/engine"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/gochannel"
	"github.com/pubsubkit/pubsub/transport/kafka"
	"github.com/pubsubkit/pubsub/transport/memory"
)

// Client publishes to and consumes from typed topics over one transport. Build it with
// Open (by URL) or New (from a transport), register handlers with Subscribe, start
// consuming with Run, and stop with Close. A Client is safe for concurrent use.
//
// A client's life is one line of states:
//
//	new ──Run──▶ running ──ctx done, Close, or consuming failed──▶ draining ──▶ stopped ──Close──▶ closed
//	 └───────────────────────────────Close────────────────────────────────────────────────────────▲
//
// Subscribe works while new or running; Publish until closed (handlers that finish
// during the drain may still publish); Run once, from new.
type Client struct {
	tr     transport.Transport
	opts   options
	obs    observers
	engine *engine.Engine
	queue  *publishQueue // PublishAsync for transports without transport.AsyncPublisher
	url    string        // Open's URL, redacted (URL)
	// lagGauge is the callback of messaging.client.consumer.lag; Close unregisters it.
	lagGauge metric.Registration

	mu    sync.Mutex
	state lifecycle                // changed under mu (a transition is checked and made under it); read anywhere
	subs  map[string]*subscription // by "topic/group"
	// starting holds the subscriptions Subscribe is starting, outside the lock.
	starting map[string]struct{}
	// pending counts the messages queued by PublishAsync and not yet settled.
	pending atomic.Int64
	// stopRun ends Run from Close; stopped is closed once Run has drained.
	stopRun context.CancelFunc
	stopped chan struct{}
	// closed is closed once Close has finished; closeErr is its result.
	closed   chan struct{}
	closeErr error
}

// state is where a client is in its life (see Client).
type state int

const (
	stateNew      state = iota // subscriptions may be added; Run not called yet
	stateRunning               // Run consumes
	stateDraining              // Run's context ended or Close began: handlers finish, nothing new is taken
	stateStopped               // Run returned; the transport is open for publishing
	stateClosing               // Close is flushing and releasing the transport
	stateClosed                // the transport is released
)

// lifecycle holds a client's state; it is read without the client's lock (Publish
// asks it on every message) and changed under it.
type lifecycle struct{ v atomic.Int32 }

func (l *lifecycle) get() state  { return state(l.v.Load()) }
func (l *lifecycle) set(s state) { l.v.Store(int32(s)) }

// Transports returns a registry holding the transports Open knows: memory://,
// kafka:// and gochannel://. Add your own to it and pass it to WithRegistry.
func Transports() *transport.Registry {
	r := &transport.Registry{}
	r.Register(memory.Scheme, memory.Open)
	r.Register(kafka.Scheme, kafka.Open)
	r.Register(gochannel.Scheme, gochannel.Open)
	return r
}

// Open opens the transport named by rawURL and returns a client on it. The schemes
// are those of WithRegistry's registry, by default Transports(): memory:// (see
// package transport/memory), kafka://host:9092 (package transport/kafka) and
// gochannel:// (Watermill's gochannel). The error for an unknown scheme wraps
// ErrUnknownScheme and lists the known ones; errors never show the URL's password.
func Open(ctx context.Context, rawURL string, opts ...Option) (*Client, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	tr, err := o.registry.Open(ctx, rawURL, transport.OpenOptions{Logger: o.logger})
	if err != nil {
		return nil, fmt.Errorf("pubsub: %w", err)
	}
	c, err := newClient(tr, o)
	if err != nil {
		return nil, errors.Join(err, tr.Close())
	}
	c.url = transport.RedactURL(rawURL)
	return c, nil
}

// New returns a client on the transport t. The client owns t: Close closes it.
func New(t transport.Transport, opts ...Option) (*Client, error) {
	if t == nil {
		return nil, fmt.Errorf("pubsub: %w: New(nil transport)", ErrInvalidOption)
	}
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	return newClient(t, o)
}

func newClient(t transport.Transport, o options) (*Client, error) {
	obs, err := newObservers(o, t.Capabilities().MessagingSystem)
	if err != nil {
		return nil, err
	}
	c := &Client{
		tr:       t,
		opts:     o,
		obs:      obs,
		subs:     map[string]*subscription{},
		starting: map[string]struct{}{},
		stopped:  make(chan struct{}),
		closed:   make(chan struct{}),
	}
	c.engine = engine.New(engine.Config{Transport: t, Drain: o.drainTimeout, Logger: o.logger,
		OnDrain: func() { c.setState(stateDraining) }})
	if _, async := t.(transport.AsyncPublisher); !async {
		c.queue = newPublishQueue(t, o.publishQueue, o.publishQueueBytes)
	}
	if err := c.registerLagGauge(); err != nil {
		return nil, err
	}
	return c, nil
}

// Run consumes every subscription until ctx is done or Close is called, then drains:
// it stops taking new messages, lets in-flight handlers finish (up to the drain
// timeout), and returns. Subscriptions added while Run runs start at once. Run returns
// nil after a clean drain, an error wrapping ErrDrainTimeout when handlers were cut
// short, or the error that stopped consumption. Run may be called once.
func (c *Client) Run(ctx context.Context) error {
	c.mu.Lock()
	switch c.state.get() {
	case stateNew:
	case stateClosing, stateClosed:
		c.mu.Unlock()
		return fmt.Errorf("pubsub: Run: %w", ErrClosed)
	default:
		c.mu.Unlock()
		return ErrAlreadyRunning
	}
	c.state.set(stateRunning)
	ctx, c.stopRun = context.WithCancel(ctx)
	c.mu.Unlock()

	err := c.engine.Run(ctx) // consumes until ctx is done, then drains
	if err != nil && !errors.Is(err, ErrDrainTimeout) {
		err = fmt.Errorf("pubsub: consuming stopped: %w", err)
	}
	c.setState(stateStopped)
	close(c.stopped)
	return err
}

func (c *Client) setState(s state) {
	c.mu.Lock()
	c.state.set(s)
	c.mu.Unlock()
}

// Running returns a channel that is closed once Run has started every subscription
// registered so far. It is never closed if Run is not called.
func (c *Client) Running() <-chan struct{} { return c.engine.Running() }

// Close stops consuming and drains as Run does, then flushes the messages queued by
// PublishAsync and PublishBatch (for at most the drain timeout), closes the transport
// and waits for the client's goroutines. Run and Subscribe fail with ErrClosed once
// Close has begun; handlers still draining may publish, and Publish fails with
// ErrClosed once the transport is closing. Every queued message's done callback is
// called: those not stored in time get the error, and Close's error, wrapping
// ErrNotFlushed, says how many.
//
// Close is idempotent; every call returns the first call's result. Do not call Close
// from a handler: it waits for handlers.
func (c *Client) Close() error {
	c.mu.Lock()
	switch c.state.get() {
	case stateClosing, stateClosed:
		c.mu.Unlock()
		<-c.closed
		return c.closeErr
	case stateRunning, stateDraining:
		c.stopRun()
		c.mu.Unlock()
		<-c.stopped
		c.mu.Lock()
	}
	c.state.set(stateClosing)
	c.mu.Unlock()

	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.drainTimeout)
	if err := c.flush(ctx); err != nil {
		errs = append(errs, fmt.Errorf("%w: %d queued messages were not stored within %s; their done callbacks get the error",
			ErrNotFlushed, c.pending.Load(), c.opts.drainTimeout))
	}
	cancel()
	if c.queue != nil {
		c.queue.close()
	}
	errs = append(errs, c.tr.Close())
	errs = append(errs, c.lagGauge.Unregister())
	c.engine.Close()
	c.closeErr = errors.Join(errs...)
	c.setState(stateClosed)
	close(c.closed)
	return c.closeErr
}

// publishing reports whether Publish may still hand messages to the transport.
func (c *Client) publishing() bool { return c.state.get() < stateClosing }

// Capabilities reports what the client's transport guarantees.
func (c *Client) Capabilities() transport.Capabilities { return c.tr.Capabilities() }
