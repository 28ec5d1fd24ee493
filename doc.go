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
// one group share its messages. Within a group, messages of one key are handled in
// publish order: by default one message of a partition at a time; with
// Delivery.Concurrency N, up to N of a partition at once, never two of one key
// ([Ordered]) or of any keys ([Unordered]). With N above 1 an in-place retry's wait
// holds back its own key only: it does not take one of the N handlers. The position committed is the lowest
// unfinished offset, so a crash redoes at most the messages in flight. The memory
// transport has one partition per topic.
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
// message is not acked and comes back. Every message a subscription accepts can be
// dead-lettered: the reason is cut to fit, its invalid UTF-8 replaced
// (metadata.ValidUTF8), and transports keep room for the dead-letter keys
// (transport.DeadLetterHeadroom). When a subscription is added, the client warns if
// its dead-letter topic (one made by other tooling, say) takes smaller messages than
// the subscription may have to dead-letter: such a message would be dead-lettered
// without its payload, which stays in the topic where the letter says.
//
// A dead-letter topic holds dead letters only; a plain subscription to it sees each
// with its dead-letter keys in Message.Metadata, and every letter: one whose payload
// does not decode as the subscription's type reaches the handler with
// Message.DecodeError set and the bytes in Message.RawPayload. A topic whose name ends
// in ".dlq" ([IsDeadLetterTopic]) is a dead-letter topic; [ReadsDeadLetters] marks one
// of another name. A letter its subscription fails goes to a second-level dead-letter
// topic with a log line at error level. [Client.DeadLetters] lists a
// subscription's pending dead letters with filters ([ByReason], [ByKey],
// [ByCorrelationID], [Since], [Until]), [Client.DeadLetterGroups] groups them by
// masked reason, [Client.Replay] sends them back to that subscription's group only, at
// attempt 1 with their correlation id (optionally with an edited payload), and
// [Client.Discard] resolves them without replaying; who, when and why are kept in the
// resolution topic ([ResolutionTopicName], [Client.Resolved]). Attempts, due times and
// replay marks are trusted only on the subscription's own retry and replay topics, and
// dead-letter keys (pubsub_dlq_*) only on dead-letter topics: elsewhere a record's
// forged ones are dropped before the handler sees it. Retry topics an earlier policy
// left behind are still consumed.
//
// A message published before any group subscribed is kept until one does, within the
// transport's retention bounds.
//
// # Correlation
//
// Every message carries a correlation id. Publish takes it from [WithCorrelationID],
// else from ctx, else uses the message's own id (a new conversation is named after its
// first message); inside a handler ctx carries the id of the message being handled, so
// everything the handler publishes continues the same conversation without passing
// anything. Read it with [CorrelationID]. A message from another producer takes a
// correlation_id, x-correlation-id, correlation-id or ce_correlationid header, else
// its ce_id, else its id ("topic-partition-offset" for a foreign Kafka record), so
// every group and redelivery agree on it; the span, the trace log and the event hook
// all see that id. What a handler of such a message publishes carries the id as
// correlation_id and also under the header the message used (x-correlation-id, say).
//
// # Publishing
//
// [Publish] waits until the message is stored. [PublishBatch] and [PublishAsync] do
// not wait for each message: the queue is bounded ([WithPublishQueue], or the Kafka
// producer's own), PublishAsync waits while it is full and calls done exactly once,
// [Client.Flush] waits for what was queued, and Close flushes, calling every queued
// message's done. [Encode] and [Client.PublishMessage] make a message now and publish
// it later (a transactional outbox, see package outbox) keeping its id, correlation id
// and trace.
//
// # CloudEvents
//
// Every topic reads CloudEvents in binary and structured mode of the Kafka protocol
// binding: [Message.ID] is ce_id, PublishedAt ce_time, Key the partitionkey when the
// record has none, Metadata holds the attributes as "ce_<name>", and the payload is
// decoded from the event's data (a structured event's datacontenttype and time string
// are kept). [WithCloudEvents] publishes binary mode, with the type
// [WithCloudEventsType] sets, and the correlation id, trace context and metadata as
// CloudEvents extensions; [WithKnativeDeadLetters] writes dead letters with Knative's
// error extensions.
//
// # Concurrency
//
// A [Client], a [Topic] and the codecs are safe for concurrent use. Different
// subscriptions, different partitions on Kafka, and with Delivery.Concurrency the
// messages of one partition, run concurrently, so a handler must be safe for
// concurrent use unless it runs with Concurrency 1 on one subscription of a
// one-partition topic.
//
// # Batch handlers
//
// [SubscribeBatch] hands a [BatchHandler] up to [WithBatch]'s max messages per call,
// waiting at most its wait after the first for more (not during a drain or a revoke).
// Every message still runs the chain on its own and is committed, retried and
// dead-lettered by itself: [Failed] (or errors.Join of several) fails those messages
// alone, and any other error or a panic fails the whole batch, which is retried as a
// batch. Delivery.Concurrency bounds the batches handled at once. Ordered batches may
// hold many messages of a key, in offset order within and across batches; while a
// failed message waits for its retry, the later messages of its key wait too and are
// handed over again after it, while the other keys go on. Delivery.Timeout bounds each
// call of the batch handler.
//
// # Health and control
//
// [Client.Health] reports each subscription's partitions, lag, in flight, paused and
// last progress, and calls it stalled when it, or any one of its partitions, has had
// messages waiting and no progress for the stall time (time paused not counted);
// [Client.ReadinessHandler] and [Client.LivenessHandler] answer Kubernetes' probes; [Client.Pause] and [Client.Resume] stop and restart a
// subscription; [Client.Lag] reads any group's committed positions.
//
// # Shutdown
//
// Run a service with a context from signal.NotifyContext(ctx, os.Interrupt,
// syscall.SIGTERM), so that a Kubernetes stop drains it.
// [Client.Run] consumes until its context ends or [Client.Close] is called, then drains:
// retry waits end at once (those messages come back later), nothing new is taken, the
// handlers in flight finish, and then the subscriptions end and commit what finished. A
// handler's context ends only when the drain timeout ([WithDrainTimeout]) runs out (its
// message is then not acked and will be redelivered, and Run returns [ErrDrainTimeout]
// once the handler has returned), or when Close releases the transport. Close drains,
// closes the transport and waits for every goroutine the client started, a handler
// that ignores its context included; subscriptions mounted with [SubscribeOnRouter]
// belong to their Router. Close is idempotent.
//
// # Errors
//
// Errors wrap sentinels to test with errors.Is: [ErrClosed] after Close,
// [ErrInvalidOption] for a bad option, name or argument, [ErrUnknownScheme] for a URL
// no transport handles, [ErrDrainTimeout] when handlers outlived the drain,
// [ErrNotFlushed] when Close could not store queued messages, [ErrPayloadTooLarge],
// [ErrUnknownSubscription] for a dead-letter operation on a subscription the client
// does not have. A
// [Permanent] error from a handler skips retries. Context errors keep their identity:
// Publish returns them as they are, and operations of several steps (Replay, Discard,
// DeadLetters) wrap them with the step, so test them with errors.Is. The library
// logs what no call returns (a background offset commit that failed and is retried, a
// PublishAsync failure without a done callback); a drain timeout is returned by Run
// and not logged.
//
// # Observability
//
// [WithTracerProvider] and [WithMeterProvider] send spans and metrics to
// OpenTelemetry (by default the otel globals): a "send <topic>" PRODUCER span per
// publish and a "process <topic>" CONSUMER span per delivery (its in-place retries
// are attempts within it), child of the producer span carried in the W3C traceparent
// header (or, without one, in the CloudEvents distributed-tracing extension,
// ce_traceparent), so a chain of handlers is one trace;
// counters of messages sent, consumed, retried, dead-lettered, replayed and
// discarded, histograms of publish and handler time, and the consumer lag gauge. [WithTraceLog] writes one line per event of a message's
// life with its correlation id, topic, body and times (see the option for the fields).
// [WithLogger] receives the client's own records; those about one message carry its
// correlation id as "cid". [WithEventHook] receives every step of a message's life
// ([Event]): published, processed, failed, retried, dead-lettered, replayed,
// discarded.
//
// # Reading the code
//
// pubsub.go holds the Client and its lifecycle; publish.go the way out. The way in:
// subscribe.go makes a subscription's feeds, internal/engine runs them (on the memory
// and Kafka transports the transport's worker that takes a message runs the chain and
// settles the message by its result; on others a worker of the engine takes each
// message from the subscription's channel, runs the chain and acks or nacks it),
// chain.go builds the chain and lists its order, package middleware holds the stages,
// each a Watermill middleware; router.go mounts a subscription on a Watermill Router
// instead. Package transport holds the contract transports implement, with memory,
// gochannel and kafka beside it.
package pubsub
