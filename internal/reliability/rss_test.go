package reliability_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// rssTargetKiB is the most a consumer may hold for 1,000,000 messages of 1 KiB.
const rssTargetKiB = 150 << 10

// rssRun is what the rss program printed for one run.
type rssRun struct {
	consumed, duplicated int
	seconds              float64
	vmhwmKiB             int
}

// TestConsumerRSS measures the peak resident set (VmHWM) of a separate consumer
// process that consumes 100,000 messages of 1 KiB (random bytes) through the full
// client from a devbroker process, on a topic of three partitions. With
// PUBSUB_RSS_1M=1 it also consumes 1,000,000, which must stay at or under 150 MiB and
// within 20% of the 100,000 run (memory does not grow with the backlog), and repeats
// both with payloads that compress about 19-fold, where a fetch of compressed bytes
// becomes about 19 times as many bytes in memory. Every message is consumed, none twice.
func TestConsumerRSS(t *testing.T) {
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+string(os.PathSeparator), "./rss")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the rss program: %v\n%s", err, out)
	}
	_, url := startBrokerAt(t, 0, "") // keeps the messages in memory only
	url = strings.Replace(url, "partitions=6", "partitions=3", 1)
	small := measureRSS(t, bin, url, "rss.small", 100_000, false)
	// A consumer that held the whole backlog would pass 100 MiB here.
	if small.vmhwmKiB > 100<<10 {
		t.Errorf("100,000 messages: VmHWM %d KiB, above 100 MiB", small.vmhwmKiB)
	}
	if os.Getenv("PUBSUB_RSS_1M") != "1" {
		t.Log("set PUBSUB_RSS_1M=1 for the 1,000,000-message runs")
		return
	}
	checkLarge(t, small, measureRSS(t, bin, url, "rss.large", 1_000_000, false))
	checkLarge(t, measureRSS(t, bin, url, "rss.small.text", 100_000, true), measureRSS(t, bin, url, "rss.large.text", 1_000_000, true))
}

func checkLarge(t *testing.T, small, large rssRun) {
	t.Helper()
	if large.vmhwmKiB > rssTargetKiB {
		t.Errorf("1,000,000 messages: VmHWM %d KiB, above the target of 150 MiB", large.vmhwmKiB)
	}
	if float64(large.vmhwmKiB) > 1.2*float64(small.vmhwmKiB) {
		t.Errorf("1,000,000 messages: VmHWM %d KiB, more than 20%% above the 100,000 run's %d KiB", large.vmhwmKiB, small.vmhwmKiB)
	}
}

// measureRSS publishes n messages of 1 KiB to topic with one rss process and
// consumes them with another, and returns what the consumer printed.
func measureRSS(t *testing.T, bin, url, topic string, n int, compressible bool) rssRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rss := filepath.Join(bin, "rss")
	args := []string{"-url", url, "-topic", topic, "-n", fmt.Sprint(n)}
	produce := append(args, "-produce")
	if compressible {
		produce = append(produce, "-compressible")
	}
	if out, err := exec.CommandContext(ctx, rss, produce...).CombinedOutput(); err != nil {
		t.Fatalf("publishing %d messages: %v\n%s", n, err, out)
	}
	out, err := exec.CommandContext(ctx, rss, args...).Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("consuming %d messages: %v\n%s%s", n, err, out, msg)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var r rssRun
	if _, err := fmt.Sscanf(lines[len(lines)-1], "consumed=%d duplicated=%d seconds=%g vmhwm_kib=%d",
		&r.consumed, &r.duplicated, &r.seconds, &r.vmhwmKiB); err != nil {
		t.Fatalf("the consumer's last line %q: %v", lines[len(lines)-1], err)
	}
	if r.consumed != n || r.duplicated != 0 {
		t.Errorf("%d messages: %d consumed, %d lost, %d duplicated", n, r.consumed, n-r.consumed, r.duplicated)
	}
	kind := "random"
	if compressible {
		kind = "compressible"
	}
	t.Logf("%d messages of 1 KiB (%s): VmHWM %d KiB (%.1f MiB), consumed in %.1fs", n, kind, r.vmhwmKiB, float64(r.vmhwmKiB)/1024, r.seconds)
	return r
}
