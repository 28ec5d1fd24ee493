package kafka

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/pubsubkit/pubsub/transport"
)

// Defaults for Config's zero fields. The durability ones are what a production topic
// needs to survive the loss of one broker without losing an acknowledged message.
const (
	DefaultClientID          = "pubsubkit"
	DefaultPartitions        = 3
	DefaultReplicationFactor = 3
	DefaultMinInsyncReplicas = 2
	DefaultPasswordEnv       = "PUBSUB_KAFKA_PASSWORD"
	DefaultDialTimeout       = 10 * time.Second
	DefaultProducerRetries   = 10
	DefaultRetryBackoff      = 250 * time.Millisecond
	DefaultDeliveryTimeout   = 2 * time.Minute
	DefaultSessionTimeout    = 10 * time.Second
	DefaultCommitInterval    = 100 * time.Millisecond
	DefaultNackDelay         = 500 * time.Millisecond
	DefaultDrain             = 30 * time.Second
	DefaultMaxMessageBytes   = 1 << 20
	DefaultPrefetch          = 256
	DefaultFetchBytes        = 512 << 10
	maxFetchBytes            = 100 << 20 // franz-go's BrokerMaxReadBytes
	DefaultPublishQueue      = 1 << 16
	DefaultPublishQueueBytes = 64 << 20
	DefaultPartitioner       = PartitionerMurmur2
	DefaultBalancer          = BalancerCooperativeSticky + "," + BalancerRange
)

// SASL mechanisms.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// Partitioners: how a record key chooses its partition. Producers that must put one
// key on one partition (so that it keeps its order) need the same one:
//
//	partitioner  hash of the key                        clients that use it by default
//	murmur2      murmur2, as the Java client            Java, Kafka Streams, Spring, franz-go; librdkafka with murmur2_random
//	crc32        CRC-32 (IEEE)                           librdkafka (consistent_random: confluent-kafka Python, Go, .NET, kcat, Karafka)
//	fnv1a        FNV-1a 32-bit, as sarama's hash         IBM/sarama (NewHashPartitioner), watermill-kafka
//
// Records without a key are spread over the partitions whatever the partitioner.
const (
	PartitionerMurmur2 = "murmur2"
	PartitionerCRC32   = "crc32"
	PartitionerFNV1a   = "fnv1a"
)

// Balancers: how a consumer group shares partitions among its members. Config.Balancer
// names one of them, or several separated by commas in order of preference (Kafka's
// partition.assignment.strategy). Kafka runs a group with a balancer every member
// lists, preferring the ones listed first; a member that lists none of the group's is
// refused (INCONSISTENT_GROUP_PROTOCOL) and consumes nothing.
//
// The default, DefaultBalancer, is "cooperative-sticky,range", the list the Java client
// defaults to since Kafka 3.0 in the other order. A group of pubsubkit members alone
// runs cooperative-sticky; a member of another client with its default joins it,
// because every common client lists range by default (sarama and watermill-kafka:
// range; librdkafka, and so confluent-kafka for Python, Go and .NET, and Karafka:
// range,roundrobin; Java: range,cooperative-sticky). While such a member is in the
// group, the group runs range, an eager balancer: franz-go sees the protocol change
// and gives up every partition (committing what is finished, as in any rebalance)
// before taking its new share, as KIP-429 prescribes for a group that mixes eager and
// cooperative members; once it has left, the group goes back to cooperative-sticky.
// cooperative-sticky first rather than range first (Java's order) because each
// member votes for the first balancer of its list that all members share: with range
// first a group of pubsubkit members would never rebalance cooperatively.
const (
	// BalancerCooperativeSticky moves only the partitions that must move in a
	// rebalance; the others keep being consumed. Alone, it admits only members that
	// list cooperative-sticky too (librdkafka with
	// partition.assignment.strategy=cooperative-sticky, franz-go's default).
	BalancerCooperativeSticky = "cooperative-sticky"
	// BalancerRange and BalancerRoundRobin are the eager, classic ones: every member
	// gives up every partition in a rebalance.
	BalancerRange      = "range"
	BalancerRoundRobin = "roundrobin"
	// BalancerKIP848 is the server-side assignment of Kafka 4.0+ (KIP-848).
	BalancerKIP848 = "kip848"
)

// Isolation levels of consumers.
const (
	// ReadCommitted: records of an aborted transaction, and of a transaction still
	// open, are not delivered. The default.
	ReadCommitted = "read_committed"
	// ReadUncommitted delivers every record as soon as it is written.
	ReadUncommitted = "read_uncommitted"
)

// Config configures the Kafka transport. The zero value of every field but Brokers
// means its default, and the defaults are the durable ones: a Config with only
// Brokers set is what production should run.
type Config struct {
	// Brokers are the bootstrap addresses, host:port.
	Brokers []string
	// ClientID names this client in broker logs and quotas. Default DefaultClientID.
	ClientID string
	// Version caps the Kafka protocol version spoken, such as "2.8.0"; "" (the
	// default) speaks the newest version each broker supports.
	Version string

	TLS  TLSConfig
	SASL SASLConfig

	// Partitions, ReplicationFactor and MinInsyncReplicas are what provisioned topics
	// are created with, and what existing topics are checked against. Defaults
	// DefaultPartitions, DefaultReplicationFactor and DefaultMinInsyncReplicas.
	Partitions        int32
	ReplicationFactor int16
	MinInsyncReplicas int
	// DisableProvisioning stops the transport from creating missing topics; it still
	// checks the durability of the topics that exist.
	DisableProvisioning bool
	// StrictDurability makes a topic that is less durable than configured an error
	// (Subscribe and Publish fail) instead of a logged warning.
	StrictDurability bool

	// DialTimeout bounds connecting to a broker, and with it how long New (and Open)
	// takes to report a cluster it cannot reach or that does not answer. Default
	// DefaultDialTimeout.
	DialTimeout time.Duration
	// ProducerRetries is how many times the producer sends a record again after a
	// retriable broker error, waiting RetryBackoff (growing to 4 times it) between
	// tries, and DeliveryTimeout bounds how long a record may wait to be stored in
	// all. The idempotent producer never writes a record twice by resending it, and
	// gives up on a record only when that is safe: a request that may have been
	// written is resent until its answer arrives. Defaults DefaultProducerRetries,
	// DefaultRetryBackoff and DefaultDeliveryTimeout.
	ProducerRetries int
	RetryBackoff    time.Duration
	DeliveryTimeout time.Duration
	// Linger is how long the producer waits for more records before it sends a
	// partition's batch. Records published while a request is in flight are batched
	// anyway, so the default, 0, costs no throughput and adds no latency.
	Linger time.Duration
	// MaxMessageBytes is the largest message Publish accepts (value, key and headers);
	// a larger one fails at once with an error wrapping transport.ErrMessageTooLarge.
	// A dead letter (a message carrying metadata.DeadLetterReason) may be up to
	// transport.DeadLetterHeadroom larger, so that a message accepted at the limit can
	// be dead-lettered; topics the transport creates get a max.message.bytes of
	// MaxMessageBytes plus the headroom; an existing topic that takes less is not
	// changed (noted at debug level; the client warns when it is a dead-letter topic
	// too small for its subscription). Default DefaultMaxMessageBytes.
	MaxMessageBytes int
	// Partitioner chooses a keyed record's partition: PartitionerMurmur2 (the
	// default, as Java), PartitionerCRC32 (librdkafka's default) or PartitionerFNV1a
	// (sarama's).
	Partitioner string
	// Compression is the producer's codec: "snappy" (the default), "lz4", "zstd",
	// "gzip" or "none".
	Compression string

	// Balancer is how a group shares partitions: BalancerCooperativeSticky,
	// BalancerRange, BalancerRoundRobin, or several of them separated by commas in
	// order of preference, or BalancerKIP848 alone. Default DefaultBalancer
	// ("cooperative-sticky,range"), which admits the default members of other
	// clients; see the Balancer constants.
	Balancer string
	// Isolation is ReadCommitted (the default) or ReadUncommitted.
	Isolation string
	// SessionTimeout is how long the coordinator waits for a silent group member.
	// Default DefaultSessionTimeout.
	SessionTimeout time.Duration
	// RebalanceTimeout is how long the coordinator waits for members to rejoin in a
	// rebalance, and so how long a member may take to hand over revoked partitions
	// (finishing their messages in flight). Default: the session timeout, at least
	// 10s. kfake (devbroker, the tests) drops a member whose session ends while it
	// waits in a rebalance; against it keep RebalanceTimeout under two thirds of
	// SessionTimeout. Apache Kafka does not need it.
	RebalanceTimeout time.Duration
	// InstanceID makes this client a static member of its consumer groups (Kafka's
	// group.instance.id, KIP-345): a consumer restarted with the same InstanceID
	// takes its partitions back at once, without a rebalance and without waiting for
	// the session timeout. Give each replica a stable name of its own (the pod name of
	// a StatefulSet); two live clients with one InstanceID fence each other off. A
	// static member leaves its groups only when its session times out. Default: none
	// (dynamic membership).
	InstanceID string
	// CommitInterval is how often the groups' positions are committed: for each
	// partition, the lowest offset not yet finished. Each tick sends one request for
	// the partitions whose position moved since the last commit, and none when nothing
	// moved, so a busy partition is committed about this often, not once per message.
	// A crash loses at most this much progress, never a message: what was not
	// committed is delivered again. Default DefaultCommitInterval.
	CommitInterval time.Duration
	// NackDelay is the pause before a nacked message is delivered again. Default
	// DefaultNackDelay.
	NackDelay time.Duration
	// Drain is the default of SubscribeOptions.Drain: how long messages in flight may
	// still finish, and be committed, when a subscription ends or its partitions are
	// revoked. It is cut to the rebalance timeout in a rebalance. Default
	// DefaultDrain.
	Drain time.Duration

	// Memory limits. A consumer holds, per partition it consumes, at most about
	// Prefetch messages (in flight, waiting, or finished ahead of the committed
	// offset) plus the fetch of at most FetchBytes that filled it (a partition's
	// fetched records are pushed whole) and, for a partition whose handlers are slow,
	// its next fetch kept beside it; and one fetch of at most FetchBytes per broker
	// that franz-go holds until it is polled; a producer holds at most PublishQueue records and PublishQueueBytes
	// bytes not yet stored, and Publish and PublishAsync wait while it is full.
	//
	// Prefetch is the number of messages held per partition. Default
	// DefaultPrefetch; at least the subscription's Concurrency.
	Prefetch int
	// FetchBytes is how many bytes a fetch asks for per partition, and from one broker
	// in all; a larger message is still fetched. Default DefaultFetchBytes; at most
	// 100 MiB, the largest broker response franz-go reads.
	FetchBytes int
	// PublishQueue and PublishQueueBytes bound the producer's queue. Defaults
	// DefaultPublishQueue and DefaultPublishQueueBytes.
	PublishQueue      int
	PublishQueueBytes int

	// Logger receives warnings (a topic less durable than configured, a failed offset
	// commit) and the client's reconnects at debug level. Default: discard.
	Logger *slog.Logger
	// ClientOptions are franz-go options added after the transport's own to every
	// client it makes (producer, consumers, readers), for what this Config does not
	// reach. They can change anything, including the durability settings the
	// transport relies on. A hook (kgo.WithHooks) must not keep a produced record
	// after its promise: the transport reuses the records of the client's lean
	// publishes once they are settled.
	ClientOptions []kgo.Opt
}

// TLSConfig turns on TLS to the brokers.
type TLSConfig struct {
	Enable bool
	// CAFile is a PEM file of the certificate authorities to trust; empty means the
	// system's.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and its key, for brokers that
	// require client authentication (mTLS). Both or neither.
	CertFile string
	KeyFile  string
	// ServerName overrides the name checked in the brokers' certificates.
	ServerName string
	// InsecureSkipVerify accepts any broker certificate. For local experiments only.
	InsecureSkipVerify bool
}

// SASLConfig turns on SASL authentication.
type SASLConfig struct {
	// Mechanism is SASLPlain, SASLScramSHA256 or SASLScramSHA512; empty turns SASL
	// off.
	Mechanism string
	User      string
	// Password, when empty, is read from the environment variable PasswordEnv when the
	// transport is created. It is never logged nor put in an error.
	Password string
	// PasswordEnv names the environment variable that holds the password. Default
	// DefaultPasswordEnv.
	PasswordEnv string
}

// withDefaults fills zero fields and validates the result. Every error wraps
// transport.ErrInvalidOption and names the field.
func (c Config) withDefaults() (Config, error) {
	c.Brokers = slices.Clone(c.Brokers)
	c.ClientID = cmp.Or(c.ClientID, DefaultClientID)
	c.Partitions = cmp.Or(c.Partitions, DefaultPartitions)
	c.ReplicationFactor = cmp.Or(c.ReplicationFactor, DefaultReplicationFactor)
	c.MinInsyncReplicas = cmp.Or(c.MinInsyncReplicas, DefaultMinInsyncReplicas)
	c.SASL.PasswordEnv = cmp.Or(c.SASL.PasswordEnv, DefaultPasswordEnv)
	c.DialTimeout = cmp.Or(c.DialTimeout, DefaultDialTimeout)
	c.ProducerRetries = cmp.Or(c.ProducerRetries, DefaultProducerRetries)
	c.RetryBackoff = cmp.Or(c.RetryBackoff, DefaultRetryBackoff)
	c.DeliveryTimeout = cmp.Or(c.DeliveryTimeout, DefaultDeliveryTimeout)
	c.MaxMessageBytes = cmp.Or(c.MaxMessageBytes, DefaultMaxMessageBytes)
	c.Partitioner = cmp.Or(strings.ToLower(c.Partitioner), DefaultPartitioner)
	c.Compression = cmp.Or(strings.ToLower(c.Compression), "snappy")
	c.Balancer = cmp.Or(strings.ToLower(strings.ReplaceAll(c.Balancer, " ", "")), DefaultBalancer)
	c.Isolation = cmp.Or(strings.ToLower(c.Isolation), ReadCommitted)
	c.SessionTimeout = cmp.Or(c.SessionTimeout, DefaultSessionTimeout)
	c.RebalanceTimeout = cmp.Or(c.RebalanceTimeout, max(c.SessionTimeout, 10*time.Second))
	c.CommitInterval = cmp.Or(c.CommitInterval, DefaultCommitInterval)
	c.NackDelay = cmp.Or(c.NackDelay, DefaultNackDelay)
	c.Drain = cmp.Or(c.Drain, DefaultDrain)
	c.Prefetch = cmp.Or(c.Prefetch, DefaultPrefetch)
	c.FetchBytes = cmp.Or(c.FetchBytes, DefaultFetchBytes)
	c.PublishQueue = cmp.Or(c.PublishQueue, DefaultPublishQueue)
	c.PublishQueueBytes = cmp.Or(c.PublishQueueBytes, DefaultPublishQueueBytes)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}

	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(c.Brokers) == 0 {
		bad("no brokers (want kafka://host:9092 or Config.Brokers)")
	}
	for _, b := range c.Brokers {
		if i := strings.LastIndexByte(b, ':'); i <= 0 || i == len(b)-1 {
			bad("broker %q is not host:port", b)
		}
	}
	if c.Version != "" && kversion.FromString(c.Version) == nil {
		bad("version %q is not a Kafka version such as 3.6.0", c.Version)
	}
	if c.Partitions < 1 {
		bad("partitions %d is below 1", c.Partitions)
	}
	if c.ReplicationFactor < 1 {
		bad("replication factor %d is below 1", c.ReplicationFactor)
	}
	if c.MinInsyncReplicas < 1 || c.MinInsyncReplicas > int(c.ReplicationFactor) {
		bad("min.insync.replicas %d must be between 1 and the replication factor %d", c.MinInsyncReplicas, c.ReplicationFactor)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("TLS client certificate and key go together: give both tls_cert and tls_key or neither")
	}
	if !c.TLS.Enable && (c.TLS.CAFile != "" || c.TLS.CertFile != "" || c.TLS.ServerName != "") {
		bad("TLS files or server name are given but TLS is off (set tls=true)")
	}
	switch c.SASL.Mechanism {
	case "":
		if c.SASL.User != "" {
			bad("a SASL user is given without a mechanism (set sasl=PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)")
		}
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		if c.SASL.User == "" {
			bad("SASL %s needs a user (kafka://user@host:9092)", c.SASL.Mechanism)
		}
	default:
		bad("SASL mechanism %q is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", c.SASL.Mechanism)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"dial timeout", c.DialTimeout}, {"retry backoff", c.RetryBackoff}, {"delivery timeout", c.DeliveryTimeout},
		{"linger", c.Linger}, {"commit interval", c.CommitInterval}, {"nack delay", c.NackDelay}, {"drain", c.Drain}} {
		if d.v < 0 {
			bad("%s %v is negative", d.name, d.v)
		}
	}
	if c.SessionTimeout < time.Second {
		bad("session timeout %v is below 1s", c.SessionTimeout)
	}
	if c.RebalanceTimeout < time.Second {
		bad("rebalance timeout %v is below 1s", c.RebalanceTimeout)
	}
	if c.ProducerRetries < 1 {
		bad("producer retries %d is below 1", c.ProducerRetries)
	}
	if c.MaxMessageBytes < 1 || c.MaxMessageBytes > maxBatchBytes-transport.DeadLetterHeadroom {
		bad("max message bytes %d is not between 1 and %d", c.MaxMessageBytes, maxBatchBytes-transport.DeadLetterHeadroom)
	}
	if c.FetchBytes < 1 || c.FetchBytes > maxFetchBytes {
		bad("fetch bytes %d is not between 1 and %d (franz-go reads no larger broker response)", c.FetchBytes, maxFetchBytes)
	}
	if c.Prefetch < 1 || c.PublishQueue < 1 || c.PublishQueueBytes < 1 {
		bad("prefetch %d, publish queue %d and publish queue bytes %d must be at least 1", c.Prefetch, c.PublishQueue, c.PublishQueueBytes)
	}
	if _, ok := partitioners[c.Partitioner]; !ok {
		bad("partitioner %q is not murmur2, crc32 or fnv1a", c.Partitioner)
	}
	if _, ok := compressions[c.Compression]; !ok {
		bad("compression %q is not snappy, lz4, zstd, gzip or none", c.Compression)
	}
	if err := checkBalancers(c.Balancer); err != nil {
		errs = append(errs, err)
	}
	if c.Isolation != ReadCommitted && c.Isolation != ReadUncommitted {
		bad("isolation %q is not read_committed or read_uncommitted", c.Isolation)
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("kafka: %w: %w", transport.ErrInvalidOption, errors.Join(errs...))
	}
	return c, nil
}

// password returns the SASL password: Config's, or else the environment's.
func (c Config) password() (string, error) {
	if c.SASL.Password != "" {
		return c.SASL.Password, nil
	}
	if p, ok := os.LookupEnv(c.SASL.PasswordEnv); ok && p != "" {
		return p, nil
	}
	return "", fmt.Errorf("kafka: %w: SASL %s for user %q needs a password: set the environment variable %s",
		transport.ErrInvalidOption, c.SASL.Mechanism, c.SASL.User, c.SASL.PasswordEnv)
}

var compressions = map[string]kgo.CompressionCodec{
	"snappy": kgo.SnappyCompression(),
	"lz4":    kgo.Lz4Compression(),
	"zstd":   kgo.ZstdCompression(),
	"gzip":   kgo.GzipCompression(),
	"none":   kgo.NoCompression(),
}

// metadataMinAge bounds how long franz-go reuses a metadata answer.
const metadataMinAge = 500 * time.Millisecond

// clientOptions are the options every client of the transport shares: brokers,
// security, timeouts, logging. The caller has applied withDefaults.
func (c Config) clientOptions() ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID(c.ClientID),
		kgo.DialTimeout(c.DialTimeout),
		// A metadata answer is reused for at most this long: a topic just created is
		// seen at once, and after a leader change or an outage the client finds the
		// new leaders within a second (franz-go's default waits 5s).
		kgo.MetadataMinAge(metadataMinAge),
		kgo.RetryBackoffFn(func(tries int) time.Duration {
			return min(c.RetryBackoff*time.Duration(max(tries, 1)), 4*c.RetryBackoff)
		}),
		kgo.WithLogger(kgoLogger{c.Logger}),
	}
	if c.Version != "" {
		opts = append(opts, kgo.MaxVersions(kversion.FromString(c.Version)))
	}
	if c.TLS.Enable {
		tc, err := c.TLS.load()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if c.SASL.Mechanism != "" {
		mech, err := c.saslMechanism()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.SASL(mech))
	}
	return opts, nil
}

// recordBatchOverhead bounds a record batch's bytes beyond its records' (the v2
// batch header is 61 bytes), which a broker counts against max.message.bytes.
const recordBatchOverhead = 64

// topicMaxMessageBytes is the max.message.bytes of the topics the transport creates:
// MaxMessageBytes and the dead-letter headroom.
func (c Config) topicMaxMessageBytes() int { return c.MaxMessageBytes + transport.DeadLetterHeadroom }

// deadLetterMaxBytes is the largest dead letter Publish accepts: one that fits, in a
// batch of its own, a topic the transport created.
func (c Config) deadLetterMaxBytes() int { return c.topicMaxMessageBytes() - recordBatchOverhead }

// producerOptions: acks from every in-sync replica, the idempotent producer (kgo's
// default, kept), bounded retries, Java's key hashing, a bounded queue; batchMax
// gives each topic's largest batch.
func (c Config) producerOptions(batchMax func(topic string) int32) []kgo.Opt {
	return []kgo.Opt{
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordRetries(c.ProducerRetries),
		kgo.RecordDeliveryTimeout(c.DeliveryTimeout),
		kgo.ProducerLinger(c.Linger),
		kgo.ProducerBatchMaxBytesFn(batchMax),
		kgo.MaxBufferedRecords(c.PublishQueue),
		kgo.MaxBufferedBytes(c.PublishQueueBytes),
		kgo.RecordPartitioner(partitioners[c.Partitioner]()),
		kgo.ProducerBatchCompression(compressions[c.Compression]),
		kgo.UnknownTopicRetries(3),
	}
}

// consumerOptions: a new group starts at the oldest offset, records of aborted
// transactions are skipped, commits are the transport's (the watermarks), fetches are
// bounded.
func (c Config) consumerOptions() []kgo.Opt {
	return []kgo.Opt{
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(c.isolation()),
		kgo.FetchMaxPartitionBytes(int32(c.FetchBytes)),
		// A broker holds a fetch for at most this long when it has no data (Java's
		// fetch.max.wait.ms; franz-go's default is 5s). A partition whose fetching was
		// paused (see subscription) waits, once resumed, for its broker's fetch in
		// flight, so this bounds that stall.
		kgo.FetchMaxWait(500 * time.Millisecond),
		// One fetch of a broker carries at most FetchBytes in all, as one partition's
		// does: franz-go holds one per broker while the poll loop waits.
		kgo.FetchMaxBytes(int32(c.FetchBytes)),
	}
}

// isolation is the consumers' isolation level, Config.Isolation.
func (c Config) isolation() kgo.IsolationLevel {
	if c.Isolation == ReadUncommitted {
		return kgo.ReadUncommitted()
	}
	return kgo.ReadCommitted()
}

// groupOptions: the balancer, the timeouts, static membership.
func (c Config) groupOptions() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SessionTimeout(c.SessionTimeout),
		kgo.RebalanceTimeout(c.RebalanceTimeout),
		kgo.HeartbeatInterval(max(c.SessionTimeout/10, 100*time.Millisecond)),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
	}
	if c.Balancer == BalancerKIP848 {
		opts = append(opts, kgo.Balancers(kgo.RangeBalancer()), kgo.ServerSideBalancer())
	} else {
		var bs []kgo.GroupBalancer
		for _, name := range strings.Split(c.Balancer, ",") {
			bs = append(bs, balancers[name]())
		}
		opts = append(opts, kgo.Balancers(bs...))
	}
	if c.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(c.InstanceID))
	}
	return opts
}
