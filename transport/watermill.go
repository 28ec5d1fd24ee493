package transport

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
)

// GroupSubscriber returns a Watermill message.Subscriber that subscribes to t as a
// member of group, so a transport can feed a plain Watermill router or Watermill's own
// test suite. Its Close ends the subscriptions it started, waits until their channels
// are closed, and leaves t open; a message it had received but not yet handed on is
// nacked, so it is redelivered. It is safe for concurrent use.
func GroupSubscriber(t Transport, group string) message.Subscriber {
	base, stopAll := context.WithCancel(context.Background())
	return &groupSubscriber{t: t, group: group, base: base, stopAll: stopAll}
}

type groupSubscriber struct {
	t       Transport
	group   string
	base    context.Context // ends when Close is called
	stopAll context.CancelFunc

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func (s *groupSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("subscriber of group %q: %w", s.group, ErrClosed)
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.base, cancel)
	if f, ok := s.t.(Forwarder); ok {
		out := make(chan *message.Message)
		done, err := f.SubscribeGroupInto(ctx, topic, s.group, out)
		if err != nil {
			stop()
			cancel()
			return nil, err
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			<-done
			stop()
			cancel()
		}()
		return out, nil
	}
	in, err := s.t.SubscribeGroup(ctx, topic, s.group)
	if err != nil {
		stop()
		cancel()
		return nil, err
	}
	// The transport closes in asynchronously once ctx ends; forwarding through out lets
	// Close return only when out is closed, as Watermill's subscribers do.
	out := make(chan *message.Message)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(out)
		defer stop()
		defer cancel()
		for msg := range in {
			select {
			case out <- msg:
			case <-ctx.Done():
				msg.Nack()
			}
		}
	}()
	return out, nil
}

// Close ends every subscription this subscriber started and waits for their channels
// to close. It is idempotent.
func (s *groupSubscriber) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.stopAll()
	s.wg.Wait()
	return nil
}

// FromWatermill adapts any Watermill publisher and subscriber to a Transport, so that
// a Watermill pub/sub that pubsubkit does not ship (SQL, AMQP, NATS, ...) can carry
// typed topics. newSubscriber returns a subscriber bound to the consumer group it is
// given ("" for none); it is called once per group and the subscriber is reused. caps
// must state honestly what the pair guarantees: the client refuses what they lack.
//
// Closing the returned transport closes the publisher and every subscriber it made.
func FromWatermill(pub message.Publisher, newSubscriber func(group string) (message.Subscriber, error), caps Capabilities) Transport {
	return &watermillTransport{pub: pub, newSubscriber: newSubscriber, caps: caps, subs: map[string]message.Subscriber{}}
}

type watermillTransport struct {
	pub           message.Publisher
	newSubscriber func(group string) (message.Subscriber, error)
	caps          Capabilities

	mu     sync.Mutex
	closed bool
	subs   map[string]message.Subscriber
}

func (w *watermillTransport) Publish(topic string, messages ...*message.Message) error {
	w.mu.Lock()
	closed := w.closed
	w.mu.Unlock()
	if closed {
		return ErrClosed
	}
	return w.pub.Publish(topic, messages...)
}

func (w *watermillTransport) SubscribeGroup(ctx context.Context, topic, group string) (<-chan *message.Message, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, ErrClosed
	}
	sub, ok := w.subs[group]
	if !ok {
		var err error
		if sub, err = w.newSubscriber(group); err != nil {
			return nil, err
		}
		w.subs[group] = sub
	}
	return sub.Subscribe(ctx, topic)
}

func (w *watermillTransport) Capabilities() Capabilities { return w.caps }

func (w *watermillTransport) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	errs := []error{w.pub.Close()}
	for _, sub := range w.subs {
		errs = append(errs, sub.Close())
	}
	return errors.Join(errs...)
}
