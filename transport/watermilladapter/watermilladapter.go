// Package watermilladapter joins pubsubkit transports and Watermill in both
// directions: NewSubscriber makes any transport.Transport a Watermill
// message.Subscriber (for a plain Watermill Router, or Watermill's own test suite),
// and New makes any Watermill publisher and subscriber a transport.Transport (SQL,
// AMQP, NATS, gochannel), with the capabilities its caller declares.
package watermilladapter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/transport"
)

// Subscriber is a Watermill message.Subscriber over a transport.Transport: each Subscribe joins
// the topic with the options it was made with, so a transport can feed a plain
// Watermill router or Watermill's own test suite. It is safe for concurrent use.
type Subscriber struct {
	t    transport.Transport
	opts transport.SubscribeOptions

	mu     sync.Mutex
	closed bool
	paused bool
	base   context.Context // ends when Close is called
	stop   context.CancelFunc
	subs   []transport.Subscription // running
	all    []transport.Subscription // every one started, for Close to wait for
}

// NewSubscriber returns a Subscriber that subscribes to t with opts.
func NewSubscriber(t transport.Transport, opts transport.SubscribeOptions) *Subscriber {
	base, stop := context.WithCancel(context.Background())
	return &Subscriber{t: t, opts: opts, base: base, stop: stop}
}

// Subscribe subscribes to topic; the channel closes when ctx is done or Close is
// called.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("subscriber of group %q: %w", s.opts.Group, transport.ErrClosed)
	}
	ctx, cancel := context.WithCancel(ctx)
	context.AfterFunc(s.base, cancel)
	sub, err := s.t.Subscribe(ctx, topic, s.opts)
	if err != nil {
		cancel()
		return nil, err
	}
	if s.paused {
		sub.Pause()
	}
	s.subs = append(s.subs, sub)
	s.all = append(s.all, sub)
	context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.subs = slices.DeleteFunc(s.subs, func(x transport.Subscription) bool { return x == sub })
		s.mu.Unlock()
	})
	return sub.Messages(), nil
}

// Pause pauses every subscription running now and every one started later, until
// Resume.
func (s *Subscriber) Pause() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paused = true
	for _, sub := range s.subs {
		sub.Pause()
	}
}

// Resume undoes Pause.
func (s *Subscriber) Resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paused = false
	for _, sub := range s.subs {
		sub.Resume()
	}
}

// Paused reports whether Pause was called more recently than Resume.
func (s *Subscriber) Paused() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.paused
}

// Subscriptions returns the subscriptions running now, to pause, resume or inspect.
func (s *Subscriber) Subscriptions() []transport.Subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.subs)
}

// Close ends every subscription this Subscriber started and waits until their
// channels are closed (their messages in flight settled, or their drain ran out). It
// leaves the transport open and is idempotent.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	s.closed = true
	subs := slices.Clone(s.all)
	s.mu.Unlock()
	s.stop()
	for _, sub := range subs {
		<-sub.Done()
	}
	return nil
}

// New adapts a Watermill publisher and subscriber to a transport.Transport, so that a
// Watermill pub/sub that pubsubkit does not ship (SQL, AMQP, NATS, gochannel) can carry
// typed topics. newSubscriber returns a subscriber bound to the consumer group it is
// given ("" for none); it is called once per group and the subscriber is reused. caps
// must state honestly what the pair guarantees (Concurrency is always false here): the
// client refuses what they lack, and without ConsumerGroups the transport refuses a
// second member of a (topic, group) while the first runs, since it would get every
// message too.
//
// The adapter delays every redelivery after a nack by nackDelay (0: 100ms), because
// many Watermill subscribers redeliver a nacked message at once, in a busy loop.
// Closing the returned transport closes the publisher and every subscriber it made.
func New(pub message.Publisher, newSubscriber func(group string) (message.Subscriber, error), caps transport.Capabilities, nackDelay time.Duration) transport.Transport {
	if nackDelay <= 0 {
		nackDelay = 100 * time.Millisecond
	}
	caps.Concurrency = false
	ctx, cancel := context.WithCancel(context.Background())
	return &watermillTransport{pub: pub, newSubscriber: newSubscriber, caps: caps, nackDelay: nackDelay,
		subs: map[string]message.Subscriber{}, members: map[string]struct{}{}, ctx: ctx, cancel: cancel}
}

type watermillTransport struct {
	pub           message.Publisher
	newSubscriber func(group string) (message.Subscriber, error)
	caps          transport.Capabilities
	nackDelay     time.Duration
	ctx           context.Context // ends when Close begins
	cancel        context.CancelFunc

	mu     sync.Mutex
	closed bool
	subs   map[string]message.Subscriber
	// members are the (topic, group) pairs subscribed now, "topic\x00group": without
	// consumer groups a group may have one member only.
	members map[string]struct{}
	wg      sync.WaitGroup
}

func (w *watermillTransport) Publish(topic string, messages ...*message.Message) error {
	w.mu.Lock()
	closed := w.closed
	w.mu.Unlock()
	if closed {
		return transport.ErrClosed
	}
	return w.pub.Publish(topic, messages...)
}

func (w *watermillTransport) Subscribe(ctx context.Context, topic string, opts transport.SubscribeOptions) (transport.Subscription, error) {
	if opts.Concurrency > 1 {
		return nil, fmt.Errorf("%w: this transport delivers one message at a time per subscription; Concurrency %d needs transport.Capabilities.Concurrency",
			transport.ErrInvalidOption, opts.Concurrency)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, transport.ErrClosed
	}
	member := topic + "\x00" + opts.Group
	if !w.caps.ConsumerGroups && opts.Group != "" {
		if _, taken := w.members[member]; taken {
			return nil, fmt.Errorf("%w: topic %q already has a member of group %q on this transport, and without consumer groups (transport.Capabilities.ConsumerGroups) a second member would get every message too instead of sharing them",
				transport.ErrInvalidOption, topic, opts.Group)
		}
	}
	sub, ok := w.subs[opts.Group]
	if !ok {
		var err error
		if sub, err = w.newSubscriber(opts.Group); err != nil {
			return nil, err
		}
		w.subs[opts.Group] = sub
	}
	ctx, cancel := context.WithCancel(ctx)
	context.AfterFunc(w.ctx, cancel)
	in, err := sub.Subscribe(ctx, topic)
	if err != nil {
		cancel()
		return nil, err
	}
	s := &watermillSubscription{out: make(chan *message.Message), done: make(chan struct{}), resumed: make(chan struct{})}
	close(s.resumed)
	w.members[member] = struct{}{}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer cancel()
		s.forward(ctx, in, w.nackDelay, func() {
			w.mu.Lock()
			delete(w.members, member)
			w.mu.Unlock()
		})
	}()
	return s, nil
}

func (w *watermillTransport) Capabilities() transport.Capabilities { return w.caps }

func (w *watermillTransport) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.cancel()
	subs := w.subs
	w.mu.Unlock()
	w.wg.Wait()
	errs := []error{w.pub.Close()}
	for _, sub := range subs {
		errs = append(errs, sub.Close())
	}
	return errors.Join(errs...)
}

// watermillSubscription hands on a Watermill subscriber's messages, each as a message
// of its own so that a nack can be delayed before it reaches the subscriber.
type watermillSubscription struct {
	out      chan *message.Message
	done     chan struct{}
	inFlight atomic.Int64

	mu      sync.Mutex
	resumed chan struct{} // closed while not paused
}

func (s *watermillSubscription) Messages() <-chan *message.Message { return s.out }
func (s *watermillSubscription) Done() <-chan struct{}             { return s.done }

func (s *watermillSubscription) Pause() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.resumed:
		s.resumed = make(chan struct{})
	default:
	}
}

func (s *watermillSubscription) Resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.resumed:
	default:
		close(s.resumed)
	}
}

func (s *watermillSubscription) paused() (<-chan struct{}, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.resumed:
		return s.resumed, false
	default:
		return s.resumed, true
	}
}

func (s *watermillSubscription) Stats() []transport.PartitionStats {
	_, paused := s.paused()
	return []transport.PartitionStats{{Committed: -1, End: -1, InFlight: int(s.inFlight.Load()), Paused: paused}}
}

// forward hands the messages of in on until in closes; ended is called once they all
// settled, before Messages and Done close.
func (s *watermillSubscription) forward(ctx context.Context, in <-chan *message.Message, nackDelay time.Duration, ended func()) {
	var handing sync.WaitGroup
	defer func() {
		handing.Wait()
		ended()
		close(s.out)
		close(s.done)
	}()
	for msg := range in {
		if resumed, paused := s.paused(); paused {
			select {
			case <-resumed:
			case <-ctx.Done():
				msg.Nack()
				continue
			}
		}
		handing.Add(1)
		go func() {
			defer handing.Done()
			s.hand(ctx, msg, nackDelay)
		}()
	}
}

// hand delivers one message and passes its outcome on, a nack after nackDelay.
func (s *watermillSubscription) hand(ctx context.Context, msg *message.Message, nackDelay time.Duration) {
	m := message.NewMessage(msg.UUID, msg.Payload)
	m.Metadata = msg.Metadata
	m.SetContext(msg.Context())
	select {
	case s.out <- m:
	case <-ctx.Done():
		msg.Nack()
		return
	}
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	select {
	case <-m.Acked():
		msg.Ack()
	case <-m.Nacked():
		timer := time.NewTimer(nackDelay)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
		}
		msg.Nack()
	}
}
