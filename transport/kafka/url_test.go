package kafka_test

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

func parse(t *testing.T, raw string) (kafka.Config, error) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return kafka.ParseURL(u)
}

func TestParseURLDefaultsAreDurable(t *testing.T) {
	c, err := parse(t, "kafka://b1:9092,b2:9092")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Brokers) != 2 || c.Brokers[1] != "b2:9092" {
		t.Errorf("brokers %v", c.Brokers)
	}
	if c.ReplicationFactor != 3 || c.MinInsyncReplicas != 2 || c.Partitions != 3 || c.DisableProvisioning || c.StrictDurability {
		t.Errorf("defaults %+v are not the durable ones", c)
	}
	if c.Version != kafka.DefaultVersion || c.ClientID != kafka.DefaultClientID || c.ProducerRetries != kafka.DefaultProducerRetries {
		t.Errorf("defaults %+v", c)
	}
}

func TestParseURLEveryParameter(t *testing.T) {
	t.Setenv("ORDERS_PW", "pw")
	c, err := parse(t, "kafka://svc@b1:9093?client_id=orders&version=3.6.0&tls=true&tls_ca=/ca.pem&tls_cert=/c.pem&tls_key=/k.pem"+
		"&tls_server_name=kafka.internal&tls_insecure_skip_verify=false&sasl=scram-sha-512&sasl_password_env=ORDERS_PW"+
		"&partitions=12&replication_factor=5&min_insync_replicas=3&provision=false&strict_durability=true"+
		"&dial_timeout=3s&producer_retries=4&retry_backoff=50ms&max_message_bytes=2000000&session_timeout=30s"+
		"&rebalance_timeout=20s&instance_id=orders-0&prefetch=32&fetch_bytes=65536&publish_queue=1000&commit_interval=250ms&nack_delay=2s&ack_grace=45s")
	if err != nil {
		t.Fatal(err)
	}
	want := kafka.Config{
		Brokers: []string{"b1:9093"}, ClientID: "orders", Version: "3.6.0",
		TLS:        kafka.TLSConfig{Enable: true, CAFile: "/ca.pem", CertFile: "/c.pem", KeyFile: "/k.pem", ServerName: "kafka.internal"},
		SASL:       kafka.SASLConfig{Mechanism: kafka.SASLScramSHA512, User: "svc", PasswordEnv: "ORDERS_PW"},
		Partitions: 12, ReplicationFactor: 5, MinInsyncReplicas: 3, DisableProvisioning: true, StrictDurability: true,
		DialTimeout: 3 * time.Second, ProducerRetries: 4, RetryBackoff: 50 * time.Millisecond, MaxMessageBytes: 2000000,
		SessionTimeout: 30 * time.Second, RebalanceTimeout: 20 * time.Second, InstanceID: "orders-0", Prefetch: 32, FetchBytes: 65536, PublishQueue: 1000, CommitInterval: 250 * time.Millisecond, NackDelay: 2 * time.Second, AckGrace: 45 * time.Second,
	}
	c.Logger = nil // the default logger is not part of what the URL says
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("parsed\n%+v\nwant\n%+v", c, want)
	}
}

func TestParseURLErrors(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want []string
	}{
		{"kafka://", []string{"no brokers"}},
		{"kafka://b1", []string{`"b1" is not host:port`}},
		{"kafka://b1:9092?partitons=3", []string{"unknown parameter partitons", "accepted:", "partitions"}},
		{"kafka://b1:9092?version=banana", []string{"version"}},
		{"kafka://b1:9092?version=0.10.2.0", []string{"older than 0.11"}},
		{"kafka://b1:9092?min_insync_replicas=4&replication_factor=3", []string{"min.insync.replicas 4"}},
		{"kafka://svc@b1:9092", []string{"without a mechanism"}},
		{"kafka://b1:9092?sasl=GSSAPI", []string{"GSSAPI"}},
		{"kafka://b1:9092?sasl=PLAIN", []string{"needs a user"}},
		{"kafka://b1:9092?tls_ca=/ca.pem", []string{"TLS is off"}},
		{"kafka://b1:9092?tls=true&tls_cert=/c.pem", []string{"both tls_cert and tls_key"}},
		{"kafka://b1:9092?dial_timeout=soon", []string{"dial_timeout"}},
		{"kafka://b1:9092/orders", []string{"path"}},
	} {
		t.Run(tc.url, func(t *testing.T) {
			_, err := parse(t, tc.url)
			if !errors.Is(err, transport.ErrInvalidOption) {
				t.Fatalf("error %v does not wrap ErrInvalidOption", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestSASLPasswordFromEnvironmentOnly(t *testing.T) {
	t.Setenv(kafka.DefaultPasswordEnv, "")
	_, err := kafka.New(t.Context(), kafka.Config{Brokers: []string{"127.0.0.1:1"}, SASL: kafka.SASLConfig{Mechanism: kafka.SASLPlain, User: "svc"}})
	if !errors.Is(err, transport.ErrInvalidOption) || !strings.Contains(err.Error(), kafka.DefaultPasswordEnv) {
		t.Fatalf("with no password anywhere: %v; want an error naming %s", err, kafka.DefaultPasswordEnv)
	}
}
