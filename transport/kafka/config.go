package kafka

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/pubsubkit/pubsub/transport"
)

// Defaults for Config's zero fields. The durability ones are what a production topic
// needs to survive the loss of one broker without losing an acknowledged message.
const (
	DefaultClientID          = "pubsubkit"
	DefaultVersion           = "2.8.0"
	DefaultPartitions        = 3
	DefaultReplicationFactor = 3
	DefaultMinInsyncReplicas = 2
	DefaultPasswordEnv       = "PUBSUB_KAFKA_PASSWORD"
	DefaultDialTimeout       = 10 * time.Second
	DefaultProducerRetries   = 10
	DefaultRetryBackoff      = 250 * time.Millisecond
	DefaultSessionTimeout    = 10 * time.Second
	DefaultCommitInterval    = time.Second
	DefaultNackDelay         = 500 * time.Millisecond
	DefaultAckGrace          = 30 * time.Second
	DefaultMaxMessageBytes   = 1 << 20
	DefaultPrefetch          = 256
	DefaultFetchBytes        = 1 << 20
	DefaultPublishQueue      = 1 << 16
)

// SASL mechanisms.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// Config configures the Kafka transport. The zero value of every field but Brokers
// means its default, and the defaults are the durable ones: a Config with only
// Brokers set is what production should run.
type Config struct {
	// Brokers are the bootstrap addresses, host:port.
	Brokers []string
	// ClientID names this client in broker logs and quotas. Default DefaultClientID.
	ClientID string
	// Version is the Kafka protocol version to speak, such as "3.6.0". It must not be
	// newer than the oldest broker. Default DefaultVersion (Kafka 2.8).
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

	// DialTimeout bounds connecting to a broker, and with it how long Open takes to
	// report a cluster it cannot reach. Default DefaultDialTimeout.
	DialTimeout time.Duration
	// ProducerRetries is how many times the producer resends a message after a
	// retriable broker error before Publish fails, waiting RetryBackoff between tries.
	// With the idempotent producer a resend never duplicates. Defaults
	// DefaultProducerRetries and DefaultRetryBackoff.
	ProducerRetries int
	RetryBackoff    time.Duration
	// MaxMessageBytes is the largest message Publish accepts. It must not exceed the
	// brokers' message.max.bytes. Default DefaultMaxMessageBytes.
	MaxMessageBytes int
	// SessionTimeout is how long the group coordinator waits for a silent member
	// before it gives its partitions to others. Default DefaultSessionTimeout.
	SessionTimeout time.Duration
	// RebalanceTimeout is how long the coordinator waits for every member to rejoin
	// the group during a rebalance; a member still busy with its in-flight messages
	// after that is dropped from the group, and those messages are delivered again.
	// Default: the session timeout, and at least 10 seconds.
	//
	// franz-go's kfake (kafkatest, examples/devbroker) drops a member whose rejoin
	// it holds longer than the member's session timeout, and that member then waits
	// for the network read timeout (30 s) before it joins again. Against kfake, keep
	// RebalanceTimeout under two thirds of SessionTimeout; Apache Kafka does not need it.
	RebalanceTimeout time.Duration
	// InstanceID makes this client a static member of its consumer groups (Kafka's
	// group.instance.id, KIP-345): a consumer restarted with the same InstanceID
	// takes its partitions back at once, without a rebalance and without waiting for
	// the session timeout. Give each replica a stable name of its own (the pod name of
	// a StatefulSet); two live clients with one InstanceID fence each other off. A
	// static member leaves its groups only when its session times out. Default: none
	// (dynamic membership).
	InstanceID string
	// CommitInterval is how often acknowledged offsets are committed. A crash loses
	// at most this much progress, never a message: what was not committed is
	// delivered again. Default DefaultCommitInterval.
	CommitInterval time.Duration
	// NackDelay is the pause before a nacked message is delivered again. Default
	// DefaultNackDelay.
	NackDelay time.Duration
	// AckGrace is how long a group subscription that has ended still takes in the
	// acks of messages it handed on, so that handlers finishing during a graceful
	// drain have their offsets committed rather than handled again after a restart.
	// It should be at least the client's drain timeout. Default DefaultAckGrace (the
	// default drain timeout); Close bounds it to 5 seconds.
	AckGrace time.Duration

	// Memory limits. A consumer holds at most about Prefetch messages, and
	// FetchBytes of fetched data, per partition it consumes, ahead of the one message
	// per partition its handler has in flight; a producer holds at most PublishQueue
	// records not yet written, and Publish waits while the queue is full. Measured
	// with the defaults (see BENCHMARKS.md), a consumer of 1 KiB messages stays at
	// about 40 MiB of RSS however many messages it reads.
	//
	// Prefetch is the number of messages buffered per partition (sarama's
	// ChannelBufferSize). Default DefaultPrefetch.
	Prefetch int
	// FetchBytes is how many bytes a fetch asks for per partition (sarama's
	// Consumer.Fetch.Default); a larger message is still fetched. Default
	// DefaultFetchBytes.
	FetchBytes int
	// PublishQueue is the number of records a producer queues before Publish waits.
	// Default DefaultPublishQueue.
	PublishQueue int

	// Logger receives warnings (a topic less durable than configured) and the
	// consumers' reconnects. Default: discard.
	Logger *slog.Logger
	// Tune, when set, is called with the sarama configuration the transport built,
	// just before use. It can change anything, including the durability settings the
	// transport relies on; the transport validates the result again.
	Tune func(*sarama.Config)
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
	transport.SetDefault(&c.ClientID, DefaultClientID)
	transport.SetDefault(&c.Version, DefaultVersion)
	transport.SetDefault(&c.Partitions, DefaultPartitions)
	transport.SetDefault(&c.ReplicationFactor, DefaultReplicationFactor)
	transport.SetDefault(&c.MinInsyncReplicas, DefaultMinInsyncReplicas)
	transport.SetDefault(&c.SASL.PasswordEnv, DefaultPasswordEnv)
	transport.SetDefault(&c.DialTimeout, DefaultDialTimeout)
	transport.SetDefault(&c.ProducerRetries, DefaultProducerRetries)
	transport.SetDefault(&c.RetryBackoff, DefaultRetryBackoff)
	transport.SetDefault(&c.MaxMessageBytes, DefaultMaxMessageBytes)
	transport.SetDefault(&c.SessionTimeout, DefaultSessionTimeout)
	transport.SetDefault(&c.RebalanceTimeout, max(c.SessionTimeout, 10*time.Second))
	transport.SetDefault(&c.CommitInterval, DefaultCommitInterval)
	transport.SetDefault(&c.NackDelay, DefaultNackDelay)
	transport.SetDefault(&c.AckGrace, DefaultAckGrace)
	transport.SetDefault(&c.Prefetch, DefaultPrefetch)
	transport.SetDefault(&c.FetchBytes, DefaultFetchBytes)
	transport.SetDefault(&c.PublishQueue, DefaultPublishQueue)
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
	if _, err := sarama.ParseKafkaVersion(c.Version); err != nil {
		bad("version %q is not a Kafka version such as 3.6.0", c.Version)
	} else if v, _ := sarama.ParseKafkaVersion(c.Version); !v.IsAtLeast(sarama.V0_11_0_0) {
		bad("version %s is older than 0.11, which the idempotent producer needs", c.Version)
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
	}{{"dial timeout", c.DialTimeout}, {"retry backoff", c.RetryBackoff}, {"commit interval", c.CommitInterval}, {"nack delay", c.NackDelay}, {"ack grace", c.AckGrace}} {
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
		bad("producer retries %d is below 1 (the idempotent producer needs at least one)", c.ProducerRetries)
	}
	if c.MaxMessageBytes < 1 {
		bad("max message bytes %d is below 1", c.MaxMessageBytes)
	}
	if c.FetchBytes > math.MaxInt32 {
		bad("fetch bytes %d is over %d", c.FetchBytes, math.MaxInt32)
	}
	if c.Prefetch < 1 || c.FetchBytes < 1 || c.PublishQueue < 1 {
		bad("prefetch %d, fetch bytes %d and publish queue %d must be at least 1", c.Prefetch, c.FetchBytes, c.PublishQueue)
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

// sarama builds the client configuration. The caller has applied withDefaults.
func (c Config) sarama() (*sarama.Config, error) {
	s := sarama.NewConfig()
	s.ClientID = c.ClientID
	s.Version, _ = sarama.ParseKafkaVersion(c.Version)

	s.Net.DialTimeout = c.DialTimeout
	s.Metadata.Retry.Max = 3
	s.Metadata.Retry.Backoff = c.RetryBackoff
	s.Metadata.AllowAutoTopicCreation = false // topics are provisioned, never created by a typo

	// Durability: every in-sync replica has the message before Publish returns, and a
	// resend after a lost response never writes it twice.
	s.Producer.RequiredAcks = sarama.WaitForAll
	s.Producer.Idempotent = true
	s.Net.MaxOpenRequests = 1
	s.Producer.Retry.Max = c.ProducerRetries
	s.Producer.Retry.Backoff = c.RetryBackoff
	s.Producer.Return.Successes = true
	s.Producer.Return.Errors = true
	s.Producer.MaxMessageBytes = c.MaxMessageBytes
	s.Producer.Partitioner = sarama.NewHashPartitioner

	// Consumers: a new group starts at the oldest message, and offsets are marked
	// only for acknowledged messages (the subscriber marks on ack), then committed.
	s.Consumer.Offsets.Initial = sarama.OffsetOldest
	s.Consumer.Offsets.AutoCommit.Enable = true
	s.Consumer.Offsets.AutoCommit.Interval = c.CommitInterval
	s.Consumer.Return.Errors = true
	s.ChannelBufferSize = c.Prefetch
	s.Consumer.Fetch.Default = int32(c.FetchBytes)
	s.Consumer.Group.Session.Timeout = c.SessionTimeout
	s.Consumer.Group.Heartbeat.Interval = c.SessionTimeout / 3
	s.Consumer.Group.Rebalance.Timeout = c.RebalanceTimeout
	s.Consumer.Group.InstanceId = c.InstanceID

	s.Admin.Timeout = max(c.DialTimeout, 10*time.Second)

	if c.TLS.Enable {
		tc, err := c.TLS.load()
		if err != nil {
			return nil, err
		}
		s.Net.TLS.Enable = true
		s.Net.TLS.Config = tc
	}
	if c.SASL.Mechanism != "" {
		pw, err := c.password()
		if err != nil {
			return nil, err
		}
		s.Net.SASL.Enable = true
		s.Net.SASL.Handshake = true
		s.Net.SASL.User = c.SASL.User
		s.Net.SASL.Password = pw
		switch c.SASL.Mechanism {
		case SASLPlain:
			s.Net.SASL.Mechanism = sarama.SASLTypePlaintext
		case SASLScramSHA256:
			s.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
			s.Net.SASL.SCRAMClientGeneratorFunc = scramClient(sha256Hash)
		case SASLScramSHA512:
			s.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
			s.Net.SASL.SCRAMClientGeneratorFunc = scramClient(sha512Hash)
		}
	}

	if c.Tune != nil {
		c.Tune(s)
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("kafka: %w: sarama configuration: %v", transport.ErrInvalidOption, err)
	}
	return s, nil
}
