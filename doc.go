// Package pubsub gives Go services typed, reliable publish/subscribe on top of
// Watermill: Kafka in production, an in-process transport in unit tests, one API for
// both, chosen by a URL.
//
//	orders := pubsub.NewTopic[Order]("orders")
//	c, err := pubsub.Open(ctx, "memory://") // or kafka://broker:9092
//	err = pubsub.Subscribe(c, orders, "billing", func(ctx context.Context, m *pubsub.Message[Order]) error {
//		return bill(ctx, m.Payload)
//	})
//	go c.Run(ctx)
//	err = pubsub.Publish(ctx, c, orders, Order{ID: "42"})
//
// # Delivery semantics
//
// Delivery is at least once. A message is acked (on Kafka: its offset committed) only
// after its handler returned nil or the message was published to its dead-letter
// topic; anything else leaves it unacked, and it is delivered again. Duplicates are
// therefore possible, after a crash, a rebalance or a redelivery; losses are not.
// Handlers should be idempotent, keyed on [Message.ID].
//
// Every consumer group receives every message of a topic; the clients subscribed with
// one group share its messages. Within a group, messages of one key (one partition)
// are handled in publish order, one at a time. The memory transport has one partition,
// so all its messages keep their order.
//
// # Retries and dead letters
//
// Each subscription has a [Delivery] policy ([WithDelivery], or the client's
// [WithDefaultDelivery]), after the Knative delivery spec. When a handler returns an
// error, panics or runs past Delivery.Timeout, the message is retried up to
// Delivery.Retry times; retry n waits BackoffDelay·2ⁿ (exponential) or
// BackoffDelay·n (linear), capped by MaxBackoff. [Ordered] delivery (the default)
// retries in place and holds back the messages behind it in its partition; [Unordered]
// delivery moves the message to the subscription's retry topic for that retry
// ([RetryTopicName]) and lets the rest go on. A [Permanent] error, a payload that
// cannot be decoded or was written by another codec, and with [WithPermanentPanics] a
// panic, skip the retries.
//
// When the retries run out, the message is published to the subscription's
// dead-letter topic, "<topic>.<group>.dlq" ([DeadLetterTopicName]) unless
// Delivery.DeadLetterTopic names another, with its payload unchanged, its metadata, and
// why: attempts, the error text, first and last failure times, the original topic,
// group, partition and offset (package metadata names the keys). Then it is acked, so
// one bad message neither blocks the messages behind it forever nor disappears. If the
// dead-letter or retry-topic publish fails, or a shutdown interrupts a retry wait, the
// message is not acked and comes back. [Client.DeadLetters] lists a subscription's dead
// letters and [Client.Replay] sends them back to that subscription's group only, at
// attempt 1 with their correlation id.
//
// A message published before any group subscribed is kept until one does, within the
// transport's retention bounds.
//
// # Correlation
//
// Every message carries a correlation id. Publish takes it from [WithCorrelationID],
// else from ctx, else generates one; inside a handler ctx carries the id of the message
// being handled, so everything the handler publishes continues the same conversation
// without passing anything. Read it with [CorrelationID].
//
// # Concurrency
//
// A [Client], a [Topic] and the codecs are safe for concurrent use. A handler runs for
// one message at a time per (topic, group, partition); different subscriptions, and
// different partitions on Kafka, run concurrently, so a handler shared by several
// subscriptions must be safe for concurrent use.
//
// # Shutdown
//
// [Client.Run] consumes until its context ends or [Client.Close] is called, then drains:
// it stops taking messages and lets in-flight handlers finish. A handler's context ends
// only when the drain timeout ([WithDrainTimeout]) runs out; its message is then not
// acked and will be redelivered. Close drains, closes the transport and waits for every
// goroutine the client started. Close is idempotent.
//
// # Errors
//
// Errors wrap sentinels to test with errors.Is: [ErrClosed] after Close,
// [ErrInvalidOption] for a bad option, name or argument, [ErrUnknownScheme] for a URL
// no transport handles, [ErrDrainTimeout] when handlers outlived the drain. A
// [Permanent] error from a handler skips retries. Context errors are returned as they
// are, never wrapped. The library does not log an error it returns.
//
// # Observability
//
// [WithTracerProvider] and [WithMeterProvider] send spans and metrics to
// OpenTelemetry (by default the otel globals): a "publish <topic>" PRODUCER span per
// publish and a "process <topic>" CONSUMER span per attempt, child of the producer
// span carried in the W3C traceparent header, so a chain of handlers is one trace;
// counters of messages sent, consumed, retried, dead-lettered and replayed, and a
// histogram of handler time. [WithTraceLog] writes one line per event of a message's
// life with its correlation id, topic, body and times (see the option for the fields).
// [WithLogger] receives the client's own records; those about one message carry its
// correlation id as "cid". [WithEventHook] receives every step of a message's life
// ([Event]): published, processed, failed, retried, dead-lettered, replayed.
package pubsub
