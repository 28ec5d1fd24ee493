package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/pubsubkit/pubsub/transport"
)

// load builds the tls.Config from the files named in t.
func (t TLSConfig) load() (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // asked for explicitly, documented as local-only
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka: %w: TLS CA file: %w", transport.ErrInvalidOption, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka: %w: TLS CA file %s holds no PEM certificate", transport.ErrInvalidOption, t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka: %w: TLS client certificate: %w", transport.ErrInvalidOption, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// saslMechanism is the franz-go SASL mechanism of c, with the password read now.
func (c Config) saslMechanism() (sasl.Mechanism, error) {
	pw, err := c.password()
	if err != nil {
		return nil, err
	}
	switch c.SASL.Mechanism {
	case SASLPlain:
		return plain.Auth{User: c.SASL.User, Pass: pw}.AsMechanism(), nil
	case SASLScramSHA256:
		return scram.Auth{User: c.SASL.User, Pass: pw}.AsSha256Mechanism(), nil
	default:
		return scram.Auth{User: c.SASL.User, Pass: pw}.AsSha512Mechanism(), nil
	}
}
