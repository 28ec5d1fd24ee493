package main

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pubsubkit/pubsub"
)

// The async rows publish s.N messages from one goroutine without waiting for any;
// the measured part ends when the last one is acknowledged. The batch rows send
// batches of batchSize from one goroutine, each waiting for its whole batch.

const batchSize = 1000

// settled counts acknowledgements and keeps the first error.
type settled struct {
	wg    sync.WaitGroup
	first atomic.Pointer[error]
}

func (a *settled) done(err error) {
	if err != nil {
		a.first.CompareAndSwap(nil, &err)
	}
	a.wg.Done()
}

func (a *settled) wait() error {
	a.wg.Wait()
	if err := a.first.Load(); err != nil {
		return *err
	}
	return nil
}

func asyncSDK(s spec, m *meter) ([]time.Duration, error) {
	ctx := context.Background()
	c, topic, body, err := warmSDK(s)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var acks settled
	acks.wg.Add(s.N)
	m.start()
	for range s.N {
		pubsub.PublishAsync(ctx, c, topic, body, acks.done)
	}
	err = acks.wait()
	m.stop()
	return nil, err
}

func asyncFranz(s spec, m *meter) ([]time.Duration, error) { return asyncFranzOf(s, m, bareRecord) }

// asyncFranzOf is the async row of raw franz-go producing record(body) for each message.
func asyncFranzOf(s spec, m *meter, record func(body []byte) *kgo.Record) ([]time.Duration, error) {
	cl, body, err := warmFranz(s)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx := context.Background()
	var acks settled
	acks.wg.Add(s.N)
	done := func(_ *kgo.Record, err error) { acks.done(err) }
	m.start()
	for range s.N {
		cl.Produce(ctx, record(body), done)
	}
	err = acks.wait()
	m.stop()
	return nil, err
}

// bareRecord is a record of body alone, as raw franz-go rows send it.
func bareRecord(body []byte) *kgo.Record { return &kgo.Record{Value: body} }

func asyncSarama(s spec, m *meter) ([]time.Duration, error) {
	p, err := sarama.NewAsyncProducer(s.Brokers, saramaConfig())
	if err != nil {
		return nil, err
	}
	var acks settled
	acks.wg.Add(1)
	read := make(chan struct{})
	go func() {
		defer close(read)
		succ, errs := p.Successes(), p.Errors()
		for succ != nil || errs != nil {
			select {
			case _, ok := <-succ:
				if !ok {
					succ = nil
					continue
				}
				acks.done(nil)
			case e, ok := <-errs:
				if !ok {
					errs = nil
					continue
				}
				acks.done(e.Err)
			}
		}
	}()
	defer func() { p.AsyncClose(); <-read }()
	body := sarama.ByteEncoder(payload(s.Size))
	// The first message, acknowledged before the measured part.
	p.Input() <- &sarama.ProducerMessage{Topic: s.Topic, Value: body}
	if err := acks.wait(); err != nil {
		return nil, err
	}
	acks.wg.Add(s.N)
	m.start()
	for range s.N {
		p.Input() <- &sarama.ProducerMessage{Topic: s.Topic, Value: body}
	}
	err = acks.wait()
	m.stop()
	return nil, err
}

func batchSDK(s spec, m *meter) ([]time.Duration, error) {
	ctx := context.Background()
	c, topic, body, err := warmSDK(s)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	vs := make([][]byte, batchSize)
	for i := range vs {
		vs[i] = body
	}
	m.start()
	for sent := 0; sent < s.N; sent += batchSize {
		if err := pubsub.PublishBatch(ctx, c, topic, vs[:min(batchSize, s.N-sent)]); err != nil {
			return nil, err
		}
	}
	m.stop()
	return nil, nil
}

func batchFranz(s spec, m *meter) ([]time.Duration, error) { return batchFranzOf(s, m, bareRecord) }

// batchFranzOf is the batch row of raw franz-go producing record(body) for each message.
func batchFranzOf(s spec, m *meter, record func(body []byte) *kgo.Record) ([]time.Duration, error) {
	cl, body, err := warmFranz(s)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx := context.Background()
	m.start()
	for sent := 0; sent < s.N; sent += batchSize {
		rs := make([]*kgo.Record, min(batchSize, s.N-sent))
		for i := range rs {
			rs[i] = record(body)
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			return nil, err
		}
	}
	m.stop()
	return nil, nil
}
