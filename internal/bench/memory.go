package main

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/google/uuid"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/transport/memory"
)

// memoryMsg is the memory scenario's payload, JSON-encoded to about the row's size.
type memoryMsg struct {
	Caller int    `json:"caller"`
	Seq    int    `json:"seq"`
	Pad    string `json:"pad"`
}

// memoryPad returns the padding that brings a memoryMsg to about size bytes, made once
// per row so that the measured part does not count its allocation.
func memoryPad(size int) string { return strings.Repeat("x", max(0, size-32)) }

// The memory rows run in two phases. First one caller publishes latencyN messages (at
// most s.N),
// waiting for each to be handled before the next: the latency, publish to handler,
// of an unloaded client. Then s.Callers goroutines publish s.N messages without
// waiting, and the row ends when the handler has seen them all: the throughput and
// the allocations per message.
const latencyN = 2000

// memoryLoad is what the two phases share: publish sends message i of caller w, and
// handled receives a value when the handler is done with a message.
type memoryLoad struct {
	publish func(w, i int) error
	handled chan struct{}
}

func (l memoryLoad) run(s spec, m *meter) ([]time.Duration, error) {
	lat, err := callers(1, min(latencyN, s.N), func(w, i int) error {
		if err := l.publish(w, i); err != nil {
			return err
		}
		<-l.handled
		return nil
	})
	if err != nil {
		return nil, err
	}
	m.start()
	done := make(chan struct{})
	go func() {
		for range s.N {
			<-l.handled
		}
		close(done)
	}()
	if _, err := callers(s.Callers, s.N, l.publish); err != nil {
		return nil, err
	}
	<-done
	m.stop()
	return lat, nil
}

func memorySDK(s spec, m *meter) ([]time.Duration, error) {
	tr, err := memory.New(memory.Config{MaxRetainedBytes: s.Retained, MaxBytes: max(s.Retained, memory.DefaultMaxBytes)})
	if err != nil {
		return nil, err
	}
	c, err := pubsub.New(tr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	topic := pubsub.NewTopic[memoryMsg]("bench")
	handled := make(chan struct{}, s.N)
	if err := pubsub.Subscribe(c, topic, "g", func(context.Context, *pubsub.Message[memoryMsg]) error {
		handled <- struct{}{}
		return nil
	}); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	<-c.Running()
	pad := memoryPad(s.Size)
	return memoryLoad{handled: handled, publish: func(w, i int) error {
		return pubsub.Publish(ctx, c, topic, memoryMsg{Caller: w, Seq: i, Pad: pad})
	}}.run(s, m)
}

func memoryWatermill(s spec, m *meter) ([]time.Duration, error) {
	g := gochannel.NewGoChannel(gochannel.Config{}, nil)
	router, err := message.NewRouter(message.RouterConfig{}, nil)
	if err != nil {
		return nil, err
	}
	handled := make(chan struct{}, s.N)
	router.AddConsumerHandler("h", "bench", g, func(msg *message.Message) error {
		var m memoryMsg
		if err := json.Unmarshal(msg.Payload, &m); err != nil {
			return err
		}
		handled <- struct{}{}
		return nil
	})
	go router.Run(context.Background())
	<-router.Running()
	defer func() { router.Close(); g.Close() }()
	pad := memoryPad(s.Size)
	return memoryLoad{handled: handled, publish: func(w, i int) error {
		body, err := json.Marshal(memoryMsg{Caller: w, Seq: i, Pad: pad})
		if err != nil {
			return err
		}
		return g.Publish("bench", message.NewMessage(uuid.NewString(), body))
	}}.run(s, m)
}
