// Optional interfaces: what some transports do beyond Transport, which the client uses
// when they are there.

package transport

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Provisioner is implemented by transports whose topics must exist before use (Kafka).
// The client calls Provision when a subscription is added, for the subscription's
// topic and for the retry and dead-letter topics it may publish to, so that a missing
// or under-replicated topic is reported by Subscribe rather than by the first failing
// message.
type Provisioner interface {
	// Provision makes sure every topic exists and is as durable as the transport is
	// configured to require. It is idempotent and safe for concurrent use.
	Provision(ctx context.Context, topics ...string) error
}

// Reader is implemented by transports that can read what a topic holds without a
// consumer group: the client lists dead letters with it.
type Reader interface {
	// ReadAll returns the messages topic holds now, oldest first within each
	// partition, each with its Position in its context. It does not wait for more
	// messages and moves no group's position. A topic that does not exist holds none.
	ReadAll(ctx context.Context, topic string) ([]*message.Message, error)
}

// MessagingSystem is implemented by transports that name themselves in telemetry (the
// messaging.system attribute), such as "kafka".
type MessagingSystem interface {
	MessagingSystem() string
}

// Forwarder is implemented by transports that can deliver a subscription into a
// channel the caller made. GroupSubscriber (and so the client) uses it to hand
// messages straight to the Watermill router, without a goroutine of its own between
// the transport and the router: one hand-off less per message.
type Forwarder interface {
	// SubscribeGroupInto is SubscribeGroup delivering into out, which it closes when
	// the subscription ends; the channel it returns is closed after out is.
	SubscribeGroupInto(ctx context.Context, topic, group string, out chan<- *message.Message) (done <-chan struct{}, err error)
}
