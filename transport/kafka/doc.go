// Package kafka is the Kafka transport, built on watermill-kafka v3 and IBM/sarama.
//
// Open it by URL through pubsub.Open ("kafka://host1:9092,host2:9092?...", see
// ParseURL for the parameters) or with New and a Config; the URL is parsed into the
// same Config, so both are validated the same way.
//
// # Durable by default
//
// The zero Config (with Brokers) is the production one:
//
//   - Publish returns once every in-sync replica has the message (acks=all), through
//     an idempotent producer that retries retriable broker errors a bounded number of
//     times with backoff, so a retry neither loses nor duplicates a message.
//   - A new consumer group starts at the oldest message. An offset is marked only when
//     its message is acked and committed every CommitInterval and when a consumer
//     stops, so a crash redoes work rather than skipping it. An ack that arrives after
//     a rebalance took the partition away is dropped, and the message is delivered
//     again to the new owner. When a subscription ends (a graceful drain), the
//     partitions are kept until the messages handed on are acked or nacked, for at
//     most Config.AckGrace, so work finished during the drain is not done again
//     (watermill-kafka alone drops those acks).
//   - Records are turned into messages by an unmarshaler that cannot fail: a bad
//     payload reaches the client's decode step and its dead-letter topic, instead of
//     stalling the partition as watermill-kafka does with an unmarshal error.
//   - Missing topics are created with Config.Partitions, ReplicationFactor (3) and
//     MinInsyncReplicas (2); an existing topic with less is logged as a warning, or
//     refused with ErrLessDurable under StrictDurability.
//
// # Delivery
//
// Within a group each partition is consumed in order with one message in flight. The
// metadata key metadata.Key becomes the record key and chooses the partition (sarama's
// FNV-1a hash, which differs from the Java client's murmur2: producers in other
// languages that must co-partition with this one need the same hash). Metadata
// travels as record headers, and the message id in watermill-kafka's
// "_watermill_message_uuid" header, so watermill-kafka consumers read these records
// too. A record without that header (from another producer) gets the id
// "topic-partition-offset". A nacked message is delivered again after
// Config.NackDelay, ahead of the rest of its partition.
//
// # Publishing
//
// Publish calls queue their records and a single loop sends them in rounds: each round
// takes everything queued, one record batch per partition, in one produce request per
// leader broker, and settles the callers when the brokers answer. So concurrent calls
// share requests, and each call returns when its own messages are acknowledged by all
// in-sync replicas or have failed; a call with many messages sends them together.
// watermill-kafka's publisher, by contrast, sends one message per round trip. The
// producer is idempotent (a producer id and per-partition sequence numbers, one batch
// per partition in flight), resends a batch unchanged after a retriable error or a
// lost connection, and returns a final broker error (a record too large, an invalid
// record, an authorization failure) to the caller; nothing is dropped silently.
// Records without a key go to one partition per round (sticky, as Kafka's own
// producer does), so they share requests too.
//
// # Security
//
// TLS (CA, client certificate, server name) and SASL PLAIN, SCRAM-SHA-256 and
// SCRAM-SHA-512. The SASL password comes from Config.SASL.Password or from the
// environment (PUBSUB_KAFKA_PASSWORD by default), never from the URL, and never
// appears in a log line or an error.
package kafka
