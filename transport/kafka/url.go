package kafka

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/internal/urlquery"
)

// Scheme is the URL scheme of this transport: kafka://
const Scheme = "kafka"

// removedParameters are kafka:// parameters of the earlier transport on sarama and
// watermill-kafka that mean nothing now; a URL that sets one is refused with the
// reason rather than silently ignored.
var removedParameters = map[string]string{
	"ack_grace": "the transport commits what handlers finish during a drain itself; set the drain with drain=",
}

// ParseURL reads a kafka:// URL into a Config, with the defaults filled in and
// validated. The URL's parameters (every one optional):
//
//	kafka://[user@]host1:9092,host2:9092?
//	    client_id=pubsubkit & version= &
//	    tls=false & tls_ca=FILE & tls_cert=FILE & tls_key=FILE & tls_server_name=NAME &
//	    tls_insecure_skip_verify=false &
//	    sasl=PLAIN|SCRAM-SHA-256|SCRAM-SHA-512 & sasl_password_env=PUBSUB_KAFKA_PASSWORD &
//	    partitions=3 & replication_factor=3 & min_insync_replicas=2 &
//	    provision=true & strict_durability=false &
//	    dial_timeout=10s & producer_retries=10 & retry_backoff=250ms & delivery_timeout=2m & linger=0s &
//	    max_message_bytes=1048576 & partitioner=murmur2|crc32|fnv1a & compression=snappy &
//	    balancer=cooperative-sticky,range|cooperative-sticky|range|roundrobin|...|kip848 & isolation=read_committed|read_uncommitted &
//	    session_timeout=10s & rebalance_timeout=10s & instance_id=NAME & commit_interval=100ms &
//	    nack_delay=500ms & drain=30s &
//	    prefetch=256 & fetch_bytes=524288 & publish_queue=65536 & publish_queue_bytes=67108864
//
// The SASL user is the URL's user; the password is read only from the environment
// variable sasl_password_env names: a URL with a password is refused, so that a
// password never sits in a config file or a log line. No error repeats a part of the
// URL that could be a password.
func ParseURL(u *url.URL) (Config, error) {
	if !strings.EqualFold(u.Scheme, Scheme) {
		return Config{}, fmt.Errorf("kafka: %w: scheme %q is not kafka", transport.ErrInvalidOption, u.Scheme)
	}
	if _, has := u.User.Password(); has {
		return Config{}, fmt.Errorf("kafka: %w: the URL holds a password; put it in the environment variable named by sasl_password_env (default %s) instead",
			transport.ErrInvalidOption, DefaultPasswordEnv)
	}
	cut := strings.ContainsRune(u.Path, '@') || strings.ContainsRune(u.RawQuery, '@') || strings.ContainsRune(u.Fragment, '@')
	switch {
	case u.Opaque != "" || cut:
		// kafka:alice:pw@host, or a password holding '/', '?' or '#' that cut the URL
		// short: whatever follows may be part of a password, so none of it is quoted.
		return Config{}, fmt.Errorf("kafka: %w: the URL is not kafka://[user@]host:port,...: a user part holding '/', '?' or '#' must be percent-encoded, and a password belongs in the environment variable named by sasl_password_env (default %s)",
			transport.ErrInvalidOption, DefaultPasswordEnv)
	case u.Path != "" && u.Path != "/":
		return Config{}, fmt.Errorf("kafka: %w: the URL has a path; brokers go in the host part, separated by commas", transport.ErrInvalidOption)
	case u.Fragment != "":
		return Config{}, fmt.Errorf("kafka: %w: the URL has a fragment (#...); a kafka URL takes only brokers and parameters", transport.ErrInvalidOption)
	}
	var c Config
	if u.Host != "" {
		c.Brokers = strings.Split(u.Host, ",")
	}
	c.SASL.User = u.User.Username()

	q := urlquery.New(u)
	for name, why := range removedParameters {
		if q.Has(name) {
			return Config{}, fmt.Errorf("kafka: %w: parameter %s is no longer used: %s", transport.ErrInvalidOption, name, why)
		}
	}
	c.ClientID = q.String("client_id", "")
	c.Version = q.String("version", "")
	c.TLS.Enable = q.Bool("tls", false)
	c.TLS.CAFile = q.String("tls_ca", "")
	c.TLS.CertFile = q.String("tls_cert", "")
	c.TLS.KeyFile = q.String("tls_key", "")
	c.TLS.ServerName = q.String("tls_server_name", "")
	c.TLS.InsecureSkipVerify = q.Bool("tls_insecure_skip_verify", false)
	c.SASL.Mechanism = strings.ToUpper(q.String("sasl", ""))
	c.SASL.PasswordEnv = q.String("sasl_password_env", "")
	c.Partitions = int32(q.Int("partitions", 0))
	c.ReplicationFactor = int16(q.Int("replication_factor", 0))
	c.MinInsyncReplicas = q.Int("min_insync_replicas", 0)
	c.DisableProvisioning = !q.Bool("provision", true)
	c.StrictDurability = q.Bool("strict_durability", false)
	c.DialTimeout = q.Duration("dial_timeout", 0)
	c.ProducerRetries = q.Int("producer_retries", 0)
	c.RetryBackoff = q.Duration("retry_backoff", 0)
	c.DeliveryTimeout = q.Duration("delivery_timeout", 0)
	c.Linger = q.Duration("linger", 0)
	c.MaxMessageBytes = q.Int("max_message_bytes", 0)
	c.Partitioner = q.String("partitioner", "")
	c.Compression = q.String("compression", "")
	c.Balancer = q.String("balancer", "")
	c.Isolation = q.String("isolation", "")
	c.SessionTimeout = q.Duration("session_timeout", 0)
	c.RebalanceTimeout = q.Duration("rebalance_timeout", 0)
	c.InstanceID = q.String("instance_id", "")
	c.CommitInterval = q.Duration("commit_interval", 0)
	c.NackDelay = q.Duration("nack_delay", 0)
	c.Drain = q.Duration("drain", 0)
	c.Prefetch = q.Int("prefetch", 0)
	c.FetchBytes = q.Int("fetch_bytes", 0)
	c.PublishQueue = q.Int("publish_queue", 0)
	c.PublishQueueBytes = q.Int("publish_queue_bytes", 0)
	if err := q.Err(); err != nil {
		return Config{}, fmt.Errorf("kafka: %w", err)
	}
	return c.withDefaults()
}

// Open opens the transport named by a kafka:// URL; it is the OpenFunc registered for
// Scheme. The transport logs to o.Logger.
func Open(ctx context.Context, u *url.URL, o transport.OpenOptions) (transport.Transport, error) {
	c, err := ParseURL(u)
	if err != nil {
		return nil, err
	}
	c.Logger = o.Logger
	return New(ctx, c)
}
