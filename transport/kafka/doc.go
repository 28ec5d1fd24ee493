// Package kafka is the Kafka transport, built on franz-go: kgo produces and consumes,
// kadm administers (topics, offsets, lag). It is a Watermill publisher and, through
// watermilladapter.NewSubscriber, a Watermill subscriber, and implements every optional
// interface of package transport: AsyncPublisher, OutgoingPublisher, Provisioner,
// Reader, TopicLister and GroupLagger. A Transport is safe for concurrent use.
//
// Open it by URL through pubsub.Open or Open, or with New and a Config; the URL is
// parsed into the same Config (ParseURL), so both are validated the same way, every
// error wrapping transport.ErrInvalidOption. New fails within about DialTimeout when
// no broker answers, a broker accepts connections but never answers, TLS fails or
// SASL is refused, and says which it likely was.
//
// # URL parameters
//
// Every parameter is optional; an unknown or malformed one is an error that names it.
// Defaults in parentheses; each sets the Config field of the same name.
//
//	kafka://[user@]host1:9092,host2:9092?...
//
//	client_id (pubsubkit)          ClientID, the client id brokers see
//	version ("": newest)           Version, the highest protocol version spoken, as "3.6.0"
//	tls (false)                    TLS.Enable
//	tls_ca, tls_cert, tls_key      TLS.CAFile, CertFile, KeyFile: PEM files (cert and key together)
//	tls_server_name                TLS.ServerName
//	tls_insecure_skip_verify       TLS.InsecureSkipVerify (false), for local experiments only
//	sasl ("": off)                 SASL.Mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; the user is the URL's
//	sasl_password_env              SASL.PasswordEnv (PUBSUB_KAFKA_PASSWORD), the variable holding the password
//	partitions (3)                 Partitions of the topics the transport creates
//	replication_factor (3)         ReplicationFactor of created topics, and the least accepted
//	min_insync_replicas (2)        MinInsyncReplicas of created topics, and the least accepted
//	provision (true)               false sets DisableProvisioning: missing topics are not created
//	strict_durability (false)      StrictDurability: a less durable topic is an error, not a warning
//	dial_timeout (10s)             DialTimeout
//	producer_retries (10)          ProducerRetries after retriable broker errors
//	retry_backoff (250ms)          RetryBackoff, growing to 4 times it
//	delivery_timeout (2m)          DeliveryTimeout, the longest a record may take to be stored
//	linger (0s)                    Linger before a partition's batch is sent
//	max_message_bytes (1048576)    MaxMessageBytes, the largest message Publish accepts
//	partitioner (murmur2)          Partitioner: murmur2, crc32 or fnv1a (see below)
//	compression (snappy)           Compression: snappy, lz4, zstd, gzip or none
//	balancer (cooperative-sticky,range)
//	                               Balancer: cooperative-sticky, range, roundrobin, a
//	                               comma-separated list of them, or kip848
//	isolation (read_committed)     Isolation: read_committed or read_uncommitted
//	session_timeout (10s)          SessionTimeout of group members
//	rebalance_timeout              RebalanceTimeout (the session timeout, at least 10s)
//	instance_id ("": dynamic)      InstanceID, static group membership (KIP-345)
//	commit_interval (100ms)        CommitInterval of the groups' offsets
//	nack_delay (500ms)             NackDelay before a nacked message comes again
//	drain (30s)                    Drain, the default of SubscribeOptions.Drain
//	prefetch (256)                 Prefetch, messages held per partition
//	fetch_bytes (524288)           FetchBytes asked per partition, and from one broker
//	publish_queue (65536)          PublishQueue, records the producer holds unstored
//	publish_queue_bytes (67108864) PublishQueueBytes, bytes the producer holds unstored
//
// A URL holding a password is refused: the password is read from the environment
// variable sasl_password_env names (or Config.SASL.Password), and never appears in a
// log line or an error. ack_grace, a parameter of the earlier transport on sarama, is
// refused with the reason.
//
// # Durable by default
//
// A Config with only Brokers set is the production one:
//
//   - Publish returns once every in-sync replica has each record (acks=all). The
//     producer is kgo's idempotent one: it retries retriable errors up to
//     ProducerRetries times within DeliveryTimeout and never writes a record twice by
//     resending it; a final error (a message too large, an authorization failure)
//     reaches the caller.
//   - Consumers read read_committed: records of aborted or still open transactions
//     are not delivered.
//   - A new consumer group starts at the oldest offset of each partition.
//   - A group commits, per partition, its watermark: the lowest offset whose message
//     is not finished (acked, or nacked and then handled). It commits every
//     CommitInterval, when partitions are revoked and when a subscription ends, so a
//     crash redoes at most the messages in flight and one commit interval, and never
//     skips one. A failed final commit is part of Close's error.
//   - Groups list the balancers cooperative-sticky, then range (Kafka picks the first
//     one every member lists). A group of pubsubkit members runs cooperative-sticky: a
//     rebalance moves only the partitions that must move. The default member of
//     another client (Java, librdkafka, sarama, watermill-kafka: all list range) joins
//     the same group, which then runs range, eager, until it leaves (see the Balancer
//     constants for why this order). balancer= selects one balancer or another list;
//     range and roundrobin are the classic eager balancers; kip848 asks the broker to
//     assign (KIP-848, Kafka 4.0+, falling back to range otherwise). A member whose
//     group refuses it (no balancer in common, INCONSISTENT_GROUP_PROTOCOL) logs it at
//     error level and reports it in the subscription's GroupError (the client's
//     Health), until it joins. instance_id makes the member static: restarted with the
//     same id it takes its partitions back without a rebalance; it leaves only when
//     its session times out.
//   - Missing topics are created (unless provision=false) with Partitions,
//     ReplicationFactor, MinInsyncReplicas and a max.message.bytes of
//     MaxMessageBytes plus transport.DeadLetterHeadroom, and the transport waits until
//     every partition has a leader. An existing topic is never altered: a replication
//     factor or min.insync.replicas below the configured one is logged as a warning
//     (an error wrapping ErrLessDurable with strict_durability). A max.message.bytes
//     below MaxMessageBytes plus the headroom (Kafka's default, say) is noted once per
//     topic at debug level: it matters only for a dead-letter topic that could refuse
//     the dead letter of a message of its source topic, and the client warns then
//     (see MessageLimit). A topic deleted while in use is created again by the next
//     Publish.
//
// # Partitioners
//
// The record key is metadata.Key and chooses the partition. Services that must put
// one key on one partition, so that it keeps its order across a mixed fleet, need
// the same hash:
//
//	partitioner  hash of the key          clients that hash so by default
//	murmur2      murmur2, as Java's       Java and Kafka Streams, franz-go; librdkafka with partitioner=murmur2_random
//	crc32        CRC-32 (IEEE)            librdkafka's consistent_random: confluent-kafka (Python, Go, .NET), kcat, Karafka
//	fnv1a        FNV-1a, 32 bits          IBM/sarama's NewHashPartitioner, watermill-kafka
//
// Records without a key stick to one partition for a while (murmur2: 64 KiB, as
// Java's KIP-794 partitioner; crc32 and fnv1a: a batch), then move to another.
//
// # Delivery and per-key concurrency
//
// Each partition a member owns is a lane (transport/internal/lane) that hands
// messages out under SubscribeOptions: with Concurrency 1, one at a time in offset
// order; with Concurrency N, up to N of the partition at once, never two of one key
// (a key's messages go in offset order, so one key holds at most one of the N slots),
// unless Unordered; with KeyConcurrency K, up to K of one key, in offset order, each
// context answering a transport.KeyOrder. A nacked message comes again after NackDelay, before the later
// messages of its key (with Concurrency 1, of its partition). Each delivered
// message's context carries its transport.Position (partition, offset, record
// timestamp) and ends when the message is settled, its partition is revoked, the
// subscription ends or the transport closes.
//
// Memory is bounded: a lane holds at most Prefetch messages (at least Concurrency)
// in flight, waiting or finished ahead of the watermark, plus the one fetch that
// filled it. While a lane is full the subscription does not poll franz-go, which then
// holds at most one fetch per broker and fetches nothing more, for at most 250 ms a
// lane: a lane full for longer (its handlers are slow or stuck) holds the others back
// no longer, and its partition's next fetch is kept beside it while its fetching is
// paused (franz-go's partition pause set, which only this back-pressure changes;
// Pause and Resume use the topic pause set, so neither undoes the other), then pushed
// as the lane gets room, when the fetching resumes. Each fetch asks at most FetchBytes
// per partition and per broker (a larger single record is still fetched). The producer
// holds at most PublishQueue records and PublishQueueBytes bytes; Publish and
// PublishAsync wait while it is full.
//
// When partitions are revoked, nothing new of them goes out, nack waits end, the
// messages in flight may finish for Drain (cut to half the rebalance timeout, so the
// member is not evicted) and the watermarks are committed before the partitions go.
// A subscription without a group reads every partition from the oldest offset and
// commits nothing; with SubscribeOptions.FromEnd it is a tail: it starts at each
// partition's end listed in Subscribe (the last stable offset under read_committed)
// and reads every message published after Subscribe returns, none before; a topic
// that does not exist yet is waited for and read from its start.
//
// # Records and messages
//
// The wire format is watermill-kafka's, so services on watermill-kafka read our
// records and we read theirs: the payload is the record value, the message id is the
// "_watermill_message_uuid" header (UUIDHeader), and every other metadata entry is a
// header of its own. The key is written once, as the record key; metadata.Key of a
// delivered message is the record key (none for a record without one), and a
// "pubsub_key" header, which earlier versions wrote too, is ignored. A record without
// the id header (from another producer) gets the id "topic-partition-offset", the
// same on every delivery. A header key a record carries more than once (librdkafka
// and Java allow it) keeps every value: the first under its name, later ones under
// "name[1]", "name[2]"... in record order, which metadata.Values reads; a message
// with such entries is written back as the repeated header. Reading a record's
// headers takes time linear in their number, however often a key repeats (100,000
// repeats of one key: 16 ms), so what one record costs is bounded by its size
// (max.message.bytes).
//
// # Message size and dead letters
//
// Publish refuses at once, with an error wrapping transport.ErrMessageTooLarge, a
// message larger than MaxMessageBytes (key, value and headers, as it estimates them),
// and maps the producer's and the broker's MESSAGE_TOO_LARGE to the same error. A dead
// letter (a message carrying metadata.DeadLetterReason) may be up to
// transport.DeadLetterHeadroom larger, less a record batch header, and topics the
// transport creates take it: a message accepted at the limit can always be
// dead-lettered with its reason and origin. The producer's batches for a topic are at
// most its max.message.bytes (and MaxMessageBytes plus the headroom); for a topic it
// could not read, at most MaxMessageBytes.
//
// # Reading without a group
//
// ReadAll (the client's dead-letter listing) lists every partition's start and end,
// fetches all partitions at once and stops at those ends; 10,000 records of 300 bytes
// take tens of milliseconds against the in-process test cluster. Topics lists topics
// by prefix, asking a broker each time so a new topic is seen; GroupLag reads a
// group's committed offsets and the partitions' ends from any process. ReadAll and
// GroupLag of a missing topic are errors wrapping transport.ErrUnknownTopic.
package kafka
