package kafka_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

// testPKI is a certificate authority and a broker certificate for 127.0.0.1 and the
// name "broker.test", made for one test and written to PEM files.
type testPKI struct {
	caFile    string
	serverTLS *tls.Config
}

func newPKI(t *testing.T) testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "pubsubkit test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "broker.test"},
		DNSNames:     []string{"broker.test"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return testPKI{
		caFile: caFile,
		serverTLS: &tls.Config{
			Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
			MinVersion:   tls.VersionTLS12,
		},
	}
}

// roundTrip opens a client on rawURL and sends one typed message through a group.
func roundTrip(t *testing.T, rawURL string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pubsub.Open(ctx, rawURL)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer c.Close()
	topic := pubsub.NewTopic[string](kafkatest.Topic("secure"))
	got := make(chan string, 1)
	if err := pubsub.Subscribe(c, topic, "g", func(_ context.Context, m *pubsub.Message[string]) error {
		got <- m.Payload
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	go c.Run(ctx)
	if err := pubsub.Publish(ctx, c, topic, "over TLS"); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	select {
	case p := <-got:
		if p != "over TLS" {
			t.Fatalf("got %q", p)
		}
	case <-ctx.Done():
		t.Fatal("message not consumed within 30s")
	}
}

func TestTLS(t *testing.T) {
	pki := newPKI(t)
	cluster := kafkatest.New(t, kfake.TLS(pki.serverTLS))
	cluster.RequireFake(t)
	roundTrip(t, cluster.URL("tls=true&tls_ca="+url.QueryEscape(pki.caFile)))
}

func TestSCRAMSHA512OverTLS(t *testing.T) {
	pki := newPKI(t)
	cluster := kafkatest.New(t, kfake.TLS(pki.serverTLS), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-512", "svc-orders", "correct horse battery"))
	cluster.RequireFake(t)
	t.Setenv("ORDERS_KAFKA_PASSWORD", "correct horse battery")
	u := strings.Replace(cluster.URL("tls=true&tls_ca="+url.QueryEscape(pki.caFile)+
		"&sasl=SCRAM-SHA-512&sasl_password_env=ORDERS_KAFKA_PASSWORD"), "kafka://", "kafka://svc-orders@", 1)
	roundTrip(t, u)
}

// openFails opens u and returns the error, failing the test if Open succeeds or takes
// longer than bound.
func openFails(t *testing.T, u string, bound time.Duration) error {
	t.Helper()
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	tr, err := kafka.Open(context.Background(), parsed)
	elapsed := time.Since(start)
	if err == nil {
		tr.Close()
		t.Fatal("Open succeeded")
	}
	if elapsed > bound {
		t.Errorf("Open took %v to fail, want under %v", elapsed, bound)
	}
	t.Logf("after %v: %v", elapsed.Round(time.Millisecond), err)
	return err
}

func TestWrongPasswordFailsClearly(t *testing.T) {
	const password = "the-wrong-one-7f3a"
	pki := newPKI(t)
	cluster := kafkatest.New(t, kfake.TLS(pki.serverTLS), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-512", "svc-orders", "correct horse battery"))
	cluster.RequireFake(t)
	t.Setenv(kafka.DefaultPasswordEnv, password)
	u := strings.Replace(cluster.URL("tls=true&tls_ca="+url.QueryEscape(pki.caFile)+"&sasl=SCRAM-SHA-512&dial_timeout=3s"),
		"kafka://", "kafka://svc-orders@", 1)
	err := openFails(t, u, 15*time.Second)
	msg := err.Error()
	if strings.Contains(msg, password) {
		t.Fatalf("the error shows the password: %v", err)
	}
	for _, want := range []string{"SCRAM-SHA-512", "svc-orders", kafka.DefaultPasswordEnv} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not name %q", msg, want)
		}
	}
}

func TestUntrustedCertificateFailsClearly(t *testing.T) {
	pki := newPKI(t)
	cluster := kafkatest.New(t, kfake.TLS(pki.serverTLS))
	cluster.RequireFake(t)
	// No tls_ca: the system roots do not know the test CA.
	err := openFails(t, cluster.URL("tls=true&dial_timeout=3s"), 15*time.Second)
	if !strings.Contains(err.Error(), "x509") || !strings.Contains(err.Error(), "TLS") {
		t.Fatalf("error does not say the certificate is not trusted: %v", err)
	}
}

func TestPasswordNeverInURLNorErrors(t *testing.T) {
	u, _ := url.Parse("kafka://svc:hunter2-secret@127.0.0.1:9092?sasl=PLAIN")
	_, err := kafka.ParseURL(u)
	if err == nil {
		t.Fatal("a URL with a password was accepted")
	}
	if strings.Contains(err.Error(), "hunter2-secret") {
		t.Fatalf("error shows the password: %v", err)
	}
	_, err = pubsub.Open(context.Background(), "kafka://svc:hunter2-secret@127.0.0.1:9092?sasl=PLAIN")
	if err == nil || strings.Contains(err.Error(), "hunter2-secret") {
		t.Fatalf("pubsub.Open error %v: want an error without the password", err)
	}
}
