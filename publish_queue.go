package pubsub

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/transport"
)

// async returns what queues the client's PublishAsync: the transport, when it has a
// queue of its own, else the client's publishQueue.
func (c *Client) async() transport.AsyncPublisher {
	if a, ok := c.tr.(transport.AsyncPublisher); ok {
		return a
	}
	return c.queue
}

// publishQueue gives PublishAsync to a transport that has only Publish: a bounded
// queue in messages and payload bytes, and publishQueueWorkers goroutines that each
// publish the messages of their keys one at a time, so that one key's messages are
// stored in the order queued.
type publishQueue struct {
	tr       transport.Transport
	lanes    [publishQueueWorkers]chan queued
	seed     maphash.Seed
	maxBytes int

	mu      sync.Mutex
	room    *sync.Cond // signalled when a message leaves the queue
	count   int        // messages queued and not settled
	bytes   int
	idle    chan struct{} // closed while count is 0
	closed  bool
	workers sync.WaitGroup
	sending sync.RWMutex // held for reading while a message goes into a lane, for writing while the lanes close
}

const publishQueueWorkers = 4

type queued struct {
	topic string
	msg   *message.Message
	done  func(error)
}

func newPublishQueue(tr transport.Transport, messages, bytes int) *publishQueue {
	q := &publishQueue{tr: tr, seed: maphash.MakeSeed(), maxBytes: bytes, idle: make(chan struct{})}
	close(q.idle)
	q.room = sync.NewCond(&q.mu)
	for i := range q.lanes {
		q.lanes[i] = make(chan queued, max(messages/publishQueueWorkers, 1))
		q.workers.Add(1)
		go q.work(q.lanes[i])
	}
	return q
}

// PublishAsync queues msg, waiting while the queue holds its bound of bytes or its
// lane is full.
func (q *publishQueue) PublishAsync(ctx context.Context, topic string, msg *message.Message, done func(error)) {
	size := len(msg.Payload)
	q.mu.Lock()
	stop := context.AfterFunc(ctx, func() {
		q.mu.Lock()
		q.room.Broadcast()
		q.mu.Unlock()
	})
	for !q.closed && q.bytes > 0 && q.bytes+size > q.maxBytes && ctx.Err() == nil {
		q.room.Wait()
	}
	stop()
	switch {
	case q.closed:
		q.mu.Unlock()
		done(transport.ErrClosed)
		return
	case ctx.Err() != nil:
		q.mu.Unlock()
		done(ctx.Err())
		return
	}
	if q.count == 0 {
		q.idle = make(chan struct{})
	}
	q.count++
	q.bytes += size
	q.mu.Unlock()

	key := msg.Metadata.Get(metadata.Key)
	if key == "" {
		key = msg.UUID // no order to keep: spread over the lanes
	}
	lane := q.lanes[maphash.String(q.seed, key)%publishQueueWorkers]
	q.sending.RLock()
	defer q.sending.RUnlock()
	if q.isClosed() {
		q.settle(size)
		done(transport.ErrClosed)
		return
	}
	select {
	case lane <- queued{topic, msg, done}:
	case <-ctx.Done():
		q.settle(size)
		done(ctx.Err())
	}
}

func (q *publishQueue) isClosed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed
}

func (q *publishQueue) work(lane <-chan queued) {
	defer q.workers.Done()
	for m := range lane {
		err := transport.ErrClosed
		if !q.isClosed() {
			err = q.tr.Publish(m.topic, m.msg)
		}
		q.settle(len(m.msg.Payload))
		m.done(err)
	}
}

func (q *publishQueue) settle(size int) {
	q.mu.Lock()
	q.count--
	q.bytes -= size
	if q.count == 0 {
		close(q.idle)
	}
	q.room.Broadcast()
	q.mu.Unlock()
}

// Flush waits until the queue is empty.
func (q *publishQueue) Flush(ctx context.Context) error {
	q.mu.Lock()
	idle := q.idle
	q.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close refuses new messages, fails the ones still queued with ErrClosed and waits
// for the workers.
func (q *publishQueue) close() {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.closed = true
	q.room.Broadcast()
	q.mu.Unlock()
	q.sending.Lock()
	for _, lane := range q.lanes {
		close(lane)
	}
	q.sending.Unlock()
	q.workers.Wait()
}

// BatchError is the error of a PublishBatch in which some messages failed: Errs maps
// the index of each failed value to its error; every other value was stored.
type BatchError struct {
	Topic string
	Total int
	Errs  map[int]error
}

func (e *BatchError) Error() string {
	first := -1
	for i := range e.Errs {
		if first < 0 || i < first {
			first = i
		}
	}
	return fmt.Sprintf("pubsub: %d of %d messages to %q were not stored (the first, #%d: %v)",
		len(e.Errs), e.Total, e.Topic, first, e.Errs[first])
}

// Unwrap returns the errors, so that errors.Is sees through to them.
func (e *BatchError) Unwrap() []error {
	errs := make([]error, 0, len(e.Errs))
	for _, err := range e.Errs {
		errs = append(errs, err)
	}
	return errs
}

// Failed returns the indexes of the failed values, in order.
func (e *BatchError) Failed() []int {
	idx := make([]int, 0, len(e.Errs))
	for i := range e.Total {
		if _, ok := e.Errs[i]; ok {
			idx = append(idx, i)
		}
	}
	return idx
}

// batchError is the *BatchError for errs, or nil when every message was stored.
func batchError(topic string, errs []error) error {
	var be *BatchError
	for i, err := range errs {
		if err == nil {
			continue
		}
		if be == nil {
			be = &BatchError{Topic: topic, Total: len(errs), Errs: map[int]error{}}
		}
		be.Errs[i] = err
	}
	if be == nil {
		return nil
	}
	return be
}
