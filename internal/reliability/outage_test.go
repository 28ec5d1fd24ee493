package reliability_test

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pubsubkit/pubsub/internal/reliability"
)

// outage is how long every broker stays down in TestClusterOutage.
const outage = 60 * time.Second

// TestClusterOutage: while a producer program publishes keyed records, every broker
// is killed (SIGKILL) and, a minute later, started again on the same ports and data.
// The producer's Publish calls wait through the outage (none is lost for it to
// retry); soon after the cluster's return (0.56 s measured; the test allows a
// minute) they succeed again, the producer
// finishes, and every record whose Publish returned nil is consumed.
func TestClusterOutage(t *testing.T) {
	const keys, perKey = 30, 100 // 3,000 records, 8 goroutines, 20 ms apart: about 8 s of publishing
	down := outage
	if testing.Short() {
		down = 10 * time.Second
	}
	port := freePorts(t, 3)
	data := t.TempDir()
	broker, url := startBrokerAt(t, port, data)
	s := newScenarioAt(t, url, keys, perKey)
	published := reliability.NewLedgerReader(filepath.Join(t.TempDir(), "published.txt"))
	producer := start(t, "producer", "-url", url, "-topic", s.topic, "-n", fmt.Sprint(keys*perKey),
		"-keys", fmt.Sprint(keys), "-callers", "8", "-pace", "20ms", "-ledger", published.Path())
	count := func() int {
		entries, err := published.Entries()
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return len(entries)
	}
	waitFor(t, 30*time.Second, "the producer to publish 300 records", func() bool { return count() >= 300 })

	broker.Process.Signal(syscall.SIGKILL)
	broker.Wait()
	atKill := count()
	t.Logf("every broker killed after %d records were published; down for %s", atKill, down)
	time.Sleep(down) // the outage itself, not a wait for an event
	atRestart := count()
	if atRestart > atKill+8 { // Publish calls answered just before the kill may land after it
		t.Errorf("%d Publish calls returned nil while every broker was down", atRestart-atKill)
	}
	restarted := time.Now()
	startBrokerAt(t, port, data)
	waitFor(t, time.Minute, "a Publish to succeed after the cluster came back", func() bool { return count() > atRestart })
	t.Logf("publishing recovered %s after the brokers restarted", time.Since(restarted).Round(10*time.Millisecond))
	if err := producer.wait(t, 3*time.Minute); err != nil {
		t.Fatalf("producer: %v", err)
	}
	out := strings.Split(strings.TrimSpace(producer.out.String()), "\n")
	t.Logf("producer: %s", out[len(out)-1]) // its summary; the rest is the client's warnings during the outage
	if n := count(); n != keys*perKey {
		t.Fatalf("the producer's ledger has %d published records, want %d", n, keys*perKey)
	}
	tl := s.finish(t, 3*time.Minute)
	t.Logf("%s", tl)
	if tl.Lost != 0 {
		t.Errorf("%d records whose Publish returned nil were never consumed", tl.Lost)
	}
}

// freePorts returns the first of n consecutive ports on 127.0.0.1 that are free now.
func freePorts(t *testing.T, n int) int {
	t.Helper()
	// Below the ports the kernel hands out to port-0 listeners and outgoing
	// connections: during the outage another process of a parallel `go test` would
	// otherwise be given one of these ports and the restart could not bind it.
	lo, hi := 10_000, ephemeralLow()-n
	for range 200 {
		base := lo + rand.IntN(hi-lo)
		ok := true
		for i := 0; ok && i < n; i++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no consecutive free ports")
	return 0
}

// ephemeralLow is the lowest port of the kernel's ephemeral range (Linux's
// ip_local_port_range; 32768, its default, where it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	var low, high int
	if _, err := fmt.Sscan(string(b), &low, &high); err != nil || low <= 11_000 {
		return 32768
	}
	return low
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
