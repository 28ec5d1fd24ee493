package reliability_test

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pubsubkit/pubsub/internal/reliability"
	"github.com/pubsubkit/pubsub/internal/testsuite"
)

// programs is the folder holding devbroker, producer and consumer, built once by
// TestMain without -race: they stand for a user's separate programs.
var programs string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pubsub-reliability-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	build := exec.Command("go", "build", "-o", dir+string(os.PathSeparator),
		"../../examples/devbroker", "./producer", "./consumer")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the programs: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	programs = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// process is a running program whose output is kept for the test log.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *testsuite.SyncBuffer
	done chan error
}

// start runs program with args. The process is killed when the test ends if it is
// still running; its output is logged when the test fails.
func start(t *testing.T, program string, args ...string) *process {
	t.Helper()
	p := &process{name: program, cmd: exec.Command(filepath.Join(programs, program), args...), out: &testsuite.SyncBuffer{}, done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("%s %d output:\n%s", program, p.cmd.Process.Pid, p.out)
		}
	})
	return p
}

// wait waits for the process to exit within timeout and returns its error.
func (p *process) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(timeout):
		t.Fatalf("%s %d still running after %s; output:\n%s", p.name, p.cmd.Process.Pid, timeout, p.out)
		return nil
	}
}

func (p *process) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signalling %s: %v", p.name, err)
	}
}

// startBroker runs devbroker with three brokers on free ports keeping its data in a
// folder, and returns the URL it printed, with the scenario's parameters.
func startBroker(t *testing.T) string {
	t.Helper()
	_, url := startBrokerAt(t, 0, t.TempDir())
	return url
}

// startBrokerAt runs devbroker with three brokers from port on (0: any free ports),
// keeping its data in dir, and returns it and the URL it printed, with the
// scenario's parameters. It is stopped when the test ends.
func startBrokerAt(t *testing.T, port int, dir string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(programs, "devbroker"), "-port", fmt.Sprint(port), "-data", dir, "-min-session-timeout", "1s")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr testsuite.SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("devbroker printed no URL: %v; stderr:\n%s", err, &stderr)
	}
	go io.Copy(io.Discard, stdout)
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "PUBSUB_URL=")
	if !ok {
		t.Fatalf("devbroker's first line %q is not PUBSUB_URL=...", line)
	}
	// Six partitions; a short session so that a killed consumer's partitions move on
	// in seconds, and a rebalance timeout under two thirds of it, which kfake needs
	// (see kafka.Config.RebalanceTimeout).
	base, _, _ := strings.Cut(url, "?")
	return cmd, base + "?partitions=6&session_timeout=3s&rebalance_timeout=1500ms"
}

// scenario is one run's topic, group and ledger.
type scenario struct {
	url, topic, group, ledger string
	reader                    *reliability.LedgerReader // the ledger, read as it grows
	keys, perKey              int
}

func newScenario(t *testing.T, keys, perKey int) scenario {
	return newScenarioAt(t, startBroker(t), keys, perKey)
}

// newScenarioAt is a scenario on the broker at url.
func newScenarioAt(t *testing.T, url string, keys, perKey int) scenario {
	ledger := filepath.Join(t.TempDir(), "ledger.txt")
	return scenario{
		url:    url,
		topic:  "reliability.load",
		group:  "reliability",
		ledger: ledger,
		reader: reliability.NewLedgerReader(ledger),
		keys:   keys, perKey: perKey,
	}
}

func (s scenario) produce(t *testing.T) *process {
	return start(t, "producer", "-url", s.url, "-topic", s.topic,
		"-n", fmt.Sprint(s.keys*s.perKey), "-keys", fmt.Sprint(s.keys))
}

func (s scenario) consume(t *testing.T, args ...string) *process {
	return start(t, "consumer", append([]string{"-url", s.url, "-topic", s.topic, "-group", s.group, "-ledger", s.ledger}, args...)...)
}

// tally reads the ledger; a missing ledger is an empty one.
func (s scenario) tally(t *testing.T) reliability.Tally {
	t.Helper()
	entries, err := s.reader.Entries()
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return reliability.Count(entries, s.keys, s.perKey, 100*time.Millisecond)
}

// waitHandled waits until the ledger counts at least n handled records, or timeout.
func (s scenario) waitHandled(t *testing.T, n int, timeout time.Duration, p *process) reliability.Tally {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		tl := s.tally(t)
		if tl.Handled >= n {
			return tl
		}
		select {
		case err := <-p.done:
			t.Fatalf("consumer exited (%v) with %d of %d records handled", err, tl.Handled, n)
		default:
		}
		if time.Now().After(deadline) {
			// A goroutine dump of the stuck consumer goes to its output, which the
			// test logs when it fails.
			p.cmd.Process.Signal(syscall.SIGQUIT)
			select {
			case <-p.done:
			case <-time.After(5 * time.Second):
			}
			t.Fatalf("%d of %d records handled after %s: %s", tl.Handled, n, timeout, tl)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// finish runs a last consumer until every record is handled, then drains it.
func (s scenario) finish(t *testing.T, timeout time.Duration, args ...string) reliability.Tally {
	t.Helper()
	t.Setenv("PUBSUB_DEBUG", "1") // the last consumer's debug log, Kafka client included, for a failure
	last := s.consume(t, args...)
	s.waitHandled(t, s.keys*s.perKey, timeout, last)
	last.signal(t, syscall.SIGTERM)
	if err := last.wait(t, time.Minute); err != nil {
		t.Fatalf("the last consumer did not drain cleanly: %v", err)
	}
	return s.tally(t)
}

// TestKill9: a consumer program is killed with SIGKILL at random moments (every
// other one while it handles records) while a producer program publishes keyed
// records to a broker in a third process, and restarted each time. Every record is
// handled at least once, and among first handlings each key's records come in
// publish order.
func TestKill9(t *testing.T) {
	keys, perKey, kills := 100, 500, 6 // 50,000 records
	if testing.Short() {
		perKey = 50
	}
	s := newScenario(t, keys, perKey)
	producer := s.produce(t)

	// A millisecond per record keeps six partitions busy for about ten seconds, so
	// that most kills land while records are being handled. The consumer is a static
	// group member, as a StatefulSet replica would be: a restart takes its partitions
	// back at once. (With dynamic membership kfake keeps a member killed while it
	// waited in JoinGroup or SyncGroup in the group for good, holding its partitions;
	// see RELIABILITY.md.)
	work := []string{"-work", "1ms", "-instance", "reliability-1"}
	progressed := 0
	for i := range kills {
		before := s.tally(t).Handled
		c := s.consume(t, work...)
		if i%2 == 0 {
			// Mid-stream: once this consumer handles records, at a random moment.
			s.waitHandled(t, before+1, time.Minute, c)
			time.Sleep(time.Duration(rand.IntN(1500)) * time.Millisecond)
		} else {
			// Anywhere, starting and joining the group included.
			time.Sleep(time.Duration(rand.IntN(3000)) * time.Millisecond)
		}
		c.signal(t, syscall.SIGKILL)
		c.wait(t, 10*time.Second)
		after := s.tally(t).Handled
		if after > before {
			progressed++
		}
		t.Logf("kill %d: %d records handled before it, %d after", i+1, before, after)
	}
	if err := producer.wait(t, 3*time.Minute); err != nil {
		t.Fatalf("producer: %v", err)
	}
	t.Logf("producer: %s", strings.TrimSpace(producer.out.String()))
	tl := s.finish(t, 3*time.Minute)
	t.Logf("%d kills, %d of them while records were being handled; %s", kills, progressed, tl)
	if progressed < kills/2 {
		t.Errorf("only %d of %d kills came while records were being handled: the scenario did not test crashes under load", progressed, kills)
	}
	if tl.Lost != 0 {
		t.Errorf("%d records lost", tl.Lost)
	}
	if tl.OutOfOrder != 0 {
		t.Errorf("%d first handlings out of key order", tl.OutOfOrder)
	}
}

// TestGracefulDrain: a consumer program taking 50 ms per record gets SIGTERM at a
// random moment under load, three times, and is restarted. A drained consumer takes
// no new record after the signal, lets every handler it started finish with its
// context alive, commits their offsets and exits cleanly: no record it finished is
// handled again by the next consumer, and nothing is lost.
func TestGracefulDrain(t *testing.T) {
	keys, perKey, drains := 60, 50, 3 // 3,000 records
	if testing.Short() {
		perKey = 20
	}
	s := newScenario(t, keys, perKey)
	producer := s.produce(t)
	work := []string{"-work", "50ms"}
	for i := range drains {
		before := s.tally(t).Handled
		c := s.consume(t, work...)
		s.waitHandled(t, before+20, time.Minute, c) // it is consuming
		time.Sleep(time.Duration(rand.IntN(1000)) * time.Millisecond)
		c.signal(t, syscall.SIGTERM)
		if err := c.wait(t, time.Minute); err != nil {
			t.Fatalf("drain %d: the consumer exited with %v", i+1, err)
		}
		t.Logf("drain %d: %d records handled before it, %d after", i+1, before, s.tally(t).Handled)
	}
	if err := producer.wait(t, 3*time.Minute); err != nil {
		t.Fatalf("producer: %v", err)
	}
	tl := s.finish(t, 3*time.Minute)
	t.Logf("%d drains; %s", drains, tl)
	if tl.InFlightAtTerm == 0 {
		t.Errorf("no handler was in flight when a drain began: the scenario did not test draining")
	}
	if tl.Lost != 0 {
		t.Errorf("%d records lost", tl.Lost)
	}
	if tl.Exited != tl.Processes {
		t.Errorf("%d of %d consumers closed cleanly", tl.Exited, tl.Processes)
	}
	if tl.StartedAfterTerm != 0 {
		t.Errorf("%d handlers started after the drain began", tl.StartedAfterTerm)
	}
	if tl.Cancelled != 0 || tl.Unfinished != 0 {
		t.Errorf("%d handlers saw their context cancelled and %d never finished during a drain", tl.Cancelled, tl.Unfinished)
	}
	if tl.RepeatedAfterDrain != 0 || tl.Duplicates != 0 {
		t.Errorf("%d records finished before a drain were handled again after it (%d duplicates in all)", tl.RepeatedAfterDrain, tl.Duplicates)
	}
}
