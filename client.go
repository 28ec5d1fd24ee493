package pubsub

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
	"github.com/pubsubkit/pubsub/transport/kafka"
	"github.com/pubsubkit/pubsub/transport/memory"
)

// Client publishes to and consumes from typed topics over one transport. Build it with
// Open (by URL) or New (from a transport), register handlers with Subscribe, start
// consuming with Run, and stop with Close. A Client is safe for concurrent use.
type Client struct {
	tel    *telemetry
	tr     transport.Transport
	opts   options
	logger *slog.Logger
	router *message.Router

	// runCtx is the router's context: it ends once the client stopped consuming.
	runCtx    context.Context
	runCancel context.CancelFunc
	// handlersCtx bounds every handler's context: it ends when the drain timeout runs
	// out, or the client is closed.
	handlersCtx    context.Context
	cancelHandlers context.CancelFunc

	closed   atomic.Bool // Close began: Run and Subscribe refuse
	released atomic.Bool // the transport is closed: Publish refuses (handlers draining may still publish before)

	mu       sync.Mutex
	started  bool
	stopping bool                    // Run began draining: the router takes no more handlers
	subs     map[string]subscription // by "topic/group"

	closing   chan struct{} // closed when Close begins
	draining  chan struct{} // closed when a drain begins: retry waits end
	drainOnce sync.Once
	runDone   chan struct{} // closed when Run has drained
	closeOnce sync.Once
	closeErr  error
}

// Open opens the transport named by rawURL and returns a client on it. Built-in
// schemes: memory:// (see package transport/memory) and kafka://host:9092 (see package
// transport/kafka). WithRegistry adds more. The
// error for an unknown scheme wraps ErrUnknownScheme and lists the known ones; errors
// never show the URL's password.
func Open(ctx context.Context, rawURL string, opts ...Option) (*Client, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	u, err := transport.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("pubsub: %w", err)
	}
	open, err := lookupScheme(o.registry, u.Scheme)
	if err != nil {
		return nil, fmt.Errorf("pubsub: %w", err)
	}
	tr, err := open(transport.WithLogger(ctx, o.logger), u)
	if err != nil {
		return nil, fmt.Errorf("pubsub: open %s: %w", u.Redacted(), err)
	}
	c, err := New(tr, opts...)
	if err != nil {
		return nil, errors.Join(err, tr.Close())
	}
	return c, nil
}

// builtins returns the transports Open knows without WithRegistry.
func builtins() *transport.Registry {
	r := &transport.Registry{}
	r.Register(memory.Scheme, memory.Open)
	r.Register(kafka.Scheme, kafka.Open)
	return r
}

func lookupScheme(user *transport.Registry, scheme string) (transport.OpenFunc, error) {
	b := builtins()
	if user != nil {
		if open, ok := user.Lookup(scheme); ok {
			return open, nil
		}
	}
	if open, ok := b.Lookup(scheme); ok {
		return open, nil
	}
	known := b.Schemes()
	if user != nil {
		known = append(known, user.Schemes()...)
	}
	return nil, transport.UnknownSchemeError(scheme, sortedUnique(known))
}

func sortedUnique(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
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
	// Watermill's router logs at Info on every start and stop; those are debug details
	// for a library's users.
	wlog := transport.WatermillLogger(o.logger)
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: o.drainTimeout + drainGrace}, wlog)
	if err != nil {
		return nil, fmt.Errorf("pubsub: %w", err)
	}
	tel, err := newTelemetry(o, t)
	if err != nil {
		return nil, err
	}
	c := &Client{
		tel:      tel,
		tr:       t,
		opts:     o,
		logger:   o.logger,
		router:   router,
		subs:     map[string]subscription{},
		closing:  make(chan struct{}),
		draining: make(chan struct{}),
		runDone:  make(chan struct{}),
	}
	c.runCtx, c.runCancel = context.WithCancel(context.Background())
	c.handlersCtx, c.cancelHandlers = context.WithCancel(context.Background())
	return c, nil
}

// Run consumes every subscription until ctx is done or Close is called, then drains:
// it stops taking new messages, lets in-flight handlers finish (up to the drain
// timeout), and returns. Subscriptions added while Run runs start at once. Run returns
// nil after a clean drain, an error wrapping ErrDrainTimeout when handlers were cut
// short, or the error that stopped consumption. Run may be called once.
func (c *Client) Run(ctx context.Context) error {
	c.mu.Lock()
	switch {
	case c.closed.Load():
		c.mu.Unlock()
		return fmt.Errorf("pubsub: Run: %w", ErrClosed)
	case c.started:
		c.mu.Unlock()
		return ErrAlreadyRunning
	}
	c.started = true
	c.mu.Unlock()

	routerDone := make(chan error, 1)
	go func() { routerDone <- c.router.Run(c.runCtx) }()

	var err error
	select {
	case <-ctx.Done():
	case <-c.closing:
	case err = <-routerDone:
		routerDone = nil
		if err != nil {
			err = fmt.Errorf("pubsub: consuming stopped: %w", err)
		}
	}
	c.mu.Lock()
	c.stopping = true
	c.mu.Unlock()
	drainErr := c.drain()
	if routerDone != nil {
		if rerr := <-routerDone; rerr != nil && err == nil {
			err = fmt.Errorf("pubsub: %w", rerr)
		}
	}
	close(c.runDone)
	if drainErr != nil {
		return drainErr
	}
	return err
}

// drain stops consumption and waits for in-flight handlers, cancelling their contexts
// once the drain timeout runs out.
func (c *Client) drain() error {
	defer c.runCancel()
	c.stopWaits()
	closed := make(chan error, 1)
	go func() { closed <- c.router.Close() }()
	timer := time.NewTimer(c.opts.drainTimeout)
	defer timer.Stop()
	select {
	case err := <-closed:
		return err
	case <-timer.C:
	}
	c.logger.Warn("pubsub: drain timeout ran out; cancelling handlers, their messages will be redelivered",
		"drain_timeout", c.opts.drainTimeout)
	c.cancelHandlers()
	<-closed // the router waits at most drainGrace more
	return fmt.Errorf("%w after %s", ErrDrainTimeout, c.opts.drainTimeout)
}

// Running returns a channel that is closed once Run has started every subscription
// registered so far. It is never closed if Run is not called.
func (c *Client) Running() <-chan struct{} { return c.router.Running() }

// Close stops consuming and drains as Run does, then closes the transport and waits
// for the client's goroutines. Run and Subscribe fail with ErrClosed once Close has
// begun; handlers still draining may publish, and Publish fails with ErrClosed once
// the transport is closed.
// Close is idempotent; every call returns the first call's result. Do not call Close
// from a handler: it waits for handlers.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed.Store(true)
		started := c.started
		c.mu.Unlock()
		close(c.closing)
		c.stopWaits()
		if started {
			<-c.runDone
		}
		c.released.Store(true)
		c.closeErr = c.tr.Close()
		c.cancelHandlers()
		c.runCancel()
	})
	return c.closeErr
}

// Capabilities reports what the client's transport guarantees.
func (c *Client) Capabilities() transport.Capabilities { return c.tr.Capabilities() }

// isReleased reports whether the transport was closed, after the drain.
func (c *Client) isReleased() bool { return c.released.Load() }

// stopWaits ends every retry wait in progress: a shutdown does not wait out a backoff.
// The messages waiting are nacked and come back when the client runs again.
func (c *Client) stopWaits() { c.drainOnce.Do(func() { close(c.draining) }) }
