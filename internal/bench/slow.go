package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/codec"
)

// The slow scenario: every message waits slowHandler in its handler, as a handler
// that calls another service does. The topic has 3 partitions and slowKeys keys;
// each payload starts with its key and its number within the key ("k0042 17 "), and
// both rows check that each key's messages arrive in that order.
const (
	slowHandler     = 5 * time.Millisecond
	slowKeys        = 1000
	slowConcurrency = 32
)

// slowKey is the key of the i-th message of the slow topic, and its number within
// the key.
func slowKey(i int) (key string, seq int) { return fmt.Sprintf("k%04d", i%slowKeys), i / slowKeys }

// slowPayload is the i-th message's payload of size bytes.
func slowPayload(i, size int) []byte {
	key, seq := slowKey(i)
	head := fmt.Sprintf("%s %d ", key, seq)
	return append([]byte(head), payload(max(0, size-len(head)))...)
}

// keyOrder checks that each key's messages come in order, from the first.
type keyOrder struct {
	m    *meter
	mu   sync.Mutex
	next map[string]int
}

func newKeyOrder(m *meter) *keyOrder { return &keyOrder{m: m, next: map[string]int{}} }

// see records a message's payload, counting an order error when it is not the one
// its key expects next.
func (o *keyOrder) see(body []byte) {
	key, rest, _ := strings.Cut(string(body), " ")
	n, _, _ := strings.Cut(rest, " ")
	seq, err := strconv.Atoi(n)
	o.mu.Lock()
	defer o.mu.Unlock()
	if err != nil || seq != o.next[key] {
		o.m.orderErrors.Add(1)
	}
	o.next[key] = seq + 1
}

// slowSDK: the whole client, Delivery.Concurrency 32, Ordered (the default).
func slowSDK(s spec, m *meter) ([]time.Duration, error) {
	c, err := kafkaClient(s)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	count := newCounter(s.N, m)
	order := newKeyOrder(m)
	topic := pubsub.NewTopic[[]byte](s.Topic, pubsub.WithCodec(codec.Raw))
	if err := pubsub.Subscribe(c, topic, s.Group, func(_ context.Context, msg *pubsub.Message[[]byte]) error {
		order.see(msg.Payload)
		time.Sleep(slowHandler)
		count.add(1)
		return nil
	}, pubsub.WithDelivery(pubsub.Delivery{Concurrency: s.Concurrency})); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	return nil, count.wait()
}

// slowWatermill: a Watermill router on watermill-kafka's subscriber with the same
// handler, as watermill-kafka is used.
func slowWatermill(s spec, m *meter) ([]time.Duration, error) {
	sub, err := watermillSubscriber(s)
	if err != nil {
		return nil, err
	}
	router, err := message.NewRouter(message.RouterConfig{}, nil)
	if err != nil {
		return nil, err
	}
	count := newCounter(s.N, m)
	order := newKeyOrder(m)
	router.AddConsumerHandler("slow", s.Topic, sub, func(msg *message.Message) error {
		order.see(msg.Payload)
		time.Sleep(slowHandler)
		count.add(1)
		return nil
	})
	go router.Run(context.Background())
	defer router.Close()
	return nil, count.wait()
}
