package kafka_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/internal/kafkatest"
)

// silentListener accepts TCP connections on 127.0.0.1 and never writes a byte, as a
// port held by something that is not Kafka (or a broker that hangs) does.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// TestOpenSilentListenerFailsWithinDialTimeout: Open against a listener that accepts
// but never answers fails within dial_timeout (2s) plus a second, saying it got no
// answer, and the SASL password (from the environment) is not in the error. Before the
// fix it took 5-6 minutes; the bound leaves a loaded machine 10 s over dial_timeout.
func TestOpenSilentListenerFailsWithinDialTimeout(t *testing.T) {
	const password = "s3cret-Pa55word"
	t.Setenv("PUBSUB_KAFKA_PASSWORD", password)
	addr := silentListener(t)
	start := time.Now()
	c, err := pubsub.Open(context.Background(), "kafka://alice@"+addr+"?sasl=PLAIN&dial_timeout=2s")
	took := time.Since(start)
	if err == nil {
		c.Close()
		t.Fatal("Open against a silent listener succeeded")
	}
	if took > 12*time.Second {
		t.Errorf("Open took %s to fail, want about dial_timeout (2s), at most 10s more", took)
	}
	if strings.Contains(err.Error(), password) {
		t.Errorf("the error shows the password: %v", err)
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("the error does not name the broker %s: %v", addr, err)
	}
	t.Logf("failed after %s: %v", took.Round(10*time.Millisecond), err)
}

// TestOpenErrorsHideThePassword: URLs that hold a password in any of the forms a user
// may write (opaque, one slash, a password holding '/', '?', '#' or '@') give an
// error that holds no part of the password, against a silent listener and against
// a port nobody listens on.
func TestOpenErrorsHideThePassword(t *testing.T) {
	t.Parallel()
	silent := silentListener(t)
	for _, host := range []string{"127.0.0.1:1", silent} {
		for _, pw := range []string{"Pw0rdSecret", "Pw0rd/Secret", "Pw0rd?Secret", "Pw0rd#Secret", "Pw0rd@Secret", "Pw0rd:Secret", "Pw0rd%2FSecret"} {
			for _, raw := range []string{
				"kafka://alice:" + pw + "@" + host,
				"kafka://alice:" + pw + "@" + host + "?sasl=PLAIN&dial_timeout=1s",
				"kafka:alice:" + pw + "@" + host,
				"kafka:/alice:" + pw + "@" + host,
				"kafka:alice:" + pw + "@" + host + "?dial_timeout=1s",
			} {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				c, err := pubsub.Open(ctx, raw)
				cancel()
				if err == nil {
					c.Close()
					t.Errorf("Open(%q) succeeded: a URL holding a password must be refused", raw)
					continue
				}
				for _, piece := range []string{"Pw0rd", "Secret", pw} {
					if strings.Contains(err.Error(), piece) {
						t.Errorf("Open(%q): the error shows %q of the password: %v", raw, piece, err)
					}
				}
			}
		}
	}
}

// TestBrokerOlderThan011Refused: a cluster that speaks no newer protocol than Kafka
// 0.10.2 (no idempotent producer, no record headers, no transactions) is refused by
// Open with an error that says the broker is too old.
func TestBrokerOlderThan011Refused(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.New(t, kfake.MaxVersions(kversion.V0_10_2()))
	cluster.RequireFake(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	c, err := pubsub.Open(ctx, cluster.URL("dial_timeout=2s"))
	if err == nil {
		c.Close()
		t.Fatal("Open against a 0.10.2 cluster succeeded")
	}
	msg := strings.ToLower(err.Error())
	if !strings.Contains(msg, "0.11") || !strings.Contains(msg, "old") {
		t.Errorf("the error does not say the broker is older than 0.11: %v", err)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("Open took %s to refuse the old broker", took)
	}
	t.Logf("%v", err)
}
