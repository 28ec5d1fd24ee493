package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/transport"
)

// producer shares one idempotent sarama AsyncProducer between every Publish call.
// sarama gathers the messages waiting for a partition leader into one produce request
// while the previous request is in flight, so concurrent callers share round trips
// instead of taking one each, as watermill-kafka's SyncProducer-based publisher does.
// Each call still waits for the acknowledgement of its own messages.
type producer struct {
	async sarama.AsyncProducer

	mu     sync.RWMutex // held for reading while sending to async.Input, so close never races a send
	closed bool
	done   sync.WaitGroup // the result readers
}

// call tracks one Publish call's messages: each success or failure counts down, the
// first failure is kept, and done closes when every message is settled.
type call struct {
	left atomic.Int64
	err  atomic.Pointer[error]
	done chan struct{}
}

func (c *call) settle(n int64, err error) {
	if err != nil {
		c.err.CompareAndSwap(nil, &err)
	}
	if c.left.Add(-n) == 0 {
		close(c.done)
	}
}

func newProducer(cfg Config, sc *sarama.Config) (*producer, error) {
	async, err := sarama.NewAsyncProducer(cfg.Brokers, sc)
	if err != nil {
		return nil, connectError(cfg, err)
	}
	p := &producer{async: async}
	p.done.Add(2)
	go func() {
		defer p.done.Done()
		for m := range async.Successes() {
			m.Metadata.(*call).settle(1, nil)
		}
	}()
	go func() {
		defer p.done.Done()
		for e := range async.Errors() {
			e.Msg.Metadata.(*call).settle(1, e.Err)
		}
	}()
	return p, nil
}

// publish hands messages to the producer and waits for their acknowledgements. When
// ctx ends first it returns ctx's error; messages already handed over may still be
// written.
func (p *producer) publish(ctx context.Context, topic string, msgs []*message.Message) error {
	c := &call{done: make(chan struct{})}
	c.left.Store(int64(len(msgs)))

	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		return fmt.Errorf("kafka: publish to %q: %w", topic, transport.ErrClosed)
	}
	for i, msg := range msgs {
		pm := marshal(topic, msg)
		pm.Metadata = c
		select {
		case p.async.Input() <- pm:
		case <-ctx.Done():
			p.mu.RUnlock()
			c.settle(int64(len(msgs)-i), nil)
			return fmt.Errorf("kafka: publish to %q: %d of %d messages not sent: %w", topic, len(msgs)-i, len(msgs), ctx.Err())
		}
	}
	p.mu.RUnlock()

	select {
	case <-c.done:
		if err := c.err.Load(); err != nil {
			return publishError(topic, *err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("kafka: publish to %q: gave up waiting for acknowledgement, the messages may or may not be written: %w", topic, ctx.Err())
	}
}

func publishError(topic string, err error) error {
	if errors.Is(err, sarama.ErrShuttingDown) {
		return fmt.Errorf("kafka: publish to %q: %w: %w", topic, transport.ErrClosed, err)
	}
	return fmt.Errorf("kafka: publish to %q: %w", topic, err)
}

// close stops taking messages, flushes those in flight (their callers get their
// results) and waits for the result readers.
func (p *producer) close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	// AsyncClose, not Close: Close drains the result channels itself, and the callers
	// waiting on those results would never hear of them.
	p.async.AsyncClose()
	p.done.Wait()
	return nil
}
