package kafka

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/pubsubkit/pubsub/transport"
)

// Scheme is the URL scheme of this transport: kafka://
const Scheme = "kafka"

// ParseURL reads a kafka:// URL into a Config, with the defaults filled in and
// validated. The URL's parameters (every one optional):
//
//	kafka://[user@]host1:9092,host2:9092?
//	    client_id=pubsubkit & version=2.8.0 &
//	    tls=false & tls_ca=FILE & tls_cert=FILE & tls_key=FILE & tls_server_name=NAME &
//	    tls_insecure_skip_verify=false &
//	    sasl=PLAIN|SCRAM-SHA-256|SCRAM-SHA-512 & sasl_password_env=PUBSUB_KAFKA_PASSWORD &
//	    partitions=3 & replication_factor=3 & min_insync_replicas=2 &
//	    provision=true & strict_durability=false &
//	    dial_timeout=10s & producer_retries=10 & retry_backoff=250ms &
//	    max_message_bytes=1048576 & session_timeout=10s & rebalance_timeout=10s & commit_interval=1s & nack_delay=500ms & ack_grace=30s &
//	    instance_id=NAME & prefetch=256 & fetch_bytes=1048576 & publish_queue=65536
//
// The SASL user is the URL's user; the password is read only from the environment
// variable sasl_password_env names: a URL with a password is refused, so that a
// password never sits in a config file or a log line.
func ParseURL(u *url.URL) (Config, error) {
	if !strings.EqualFold(u.Scheme, Scheme) {
		return Config{}, fmt.Errorf("kafka: %w: scheme %q is not kafka", transport.ErrInvalidOption, u.Scheme)
	}
	if _, has := u.User.Password(); has {
		return Config{}, fmt.Errorf("kafka: %w: the URL holds a password; put it in the environment variable named by sasl_password_env (default %s) instead",
			transport.ErrInvalidOption, DefaultPasswordEnv)
	}
	var c Config
	if u.Host != "" {
		c.Brokers = strings.Split(u.Host, ",")
	}
	if u.Path != "" && u.Path != "/" {
		return Config{}, fmt.Errorf("kafka: %w: the URL has a path %q; brokers go in the host part, separated by commas", transport.ErrInvalidOption, u.Path)
	}
	c.SASL.User = u.User.Username()

	q := transport.NewQuery(u)
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
	c.MaxMessageBytes = q.Int("max_message_bytes", 0)
	c.SessionTimeout = q.Duration("session_timeout", 0)
	c.RebalanceTimeout = q.Duration("rebalance_timeout", 0)
	c.InstanceID = q.String("instance_id", "")
	c.Prefetch = q.Int("prefetch", 0)
	c.FetchBytes = q.Int("fetch_bytes", 0)
	c.PublishQueue = q.Int("publish_queue", 0)
	c.CommitInterval = q.Duration("commit_interval", 0)
	c.NackDelay = q.Duration("nack_delay", 0)
	c.AckGrace = q.Duration("ack_grace", 0)
	if err := q.Err(); err != nil {
		return Config{}, fmt.Errorf("kafka: %w", err)
	}
	return c.withDefaults()
}

// Open opens the transport named by a kafka:// URL; it is the OpenFunc registered for
// Scheme. The transport logs to the logger in ctx (transport.WithLogger).
func Open(ctx context.Context, u *url.URL) (transport.Transport, error) {
	c, err := ParseURL(u)
	if err != nil {
		return nil, err
	}
	c.Logger = transport.LoggerFrom(ctx)
	return New(ctx, c)
}
