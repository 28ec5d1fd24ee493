package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"
)

// spec is one row: which client does what, run in a process of its own.
type spec struct {
	Scenario string   `json:"scenario"` // memory, publish, consume, bound
	Client   string   `json:"client"`   // sdk, watermill, sarama, franz-go
	Size     int      `json:"size"`     // payload bytes
	Callers  int      `json:"callers"`  // concurrent publishers
	N        int      `json:"n"`        // messages
	Brokers  []string `json:"brokers,omitempty"`
	Topic    string   `json:"topic,omitempty"`
	Group    string   `json:"group,omitempty"`
	Prefetch int      `json:"prefetch,omitempty"` // SDK consumers: kafka.Config.Prefetch (0: default)
}

// result is what a row measured. Latencies are zero where they do not apply.
type result struct {
	spec
	Seconds      float64 `json:"seconds"`
	MsgsPerSec   float64 `json:"msgs_per_sec"`
	P50          float64 `json:"p50_ms,omitempty"` // milliseconds
	P99          float64 `json:"p99_ms,omitempty"`
	AllocsPerMsg float64 `json:"allocs_per_msg"`
	PeakRSSMiB   float64 `json:"peak_rss_mib"` // filled in by the parent
}

// runner runs a row's work; it returns the latency of each message (or nil) and
// calls start() once the client is ready, right before the measured part.
type runner func(s spec, start func()) ([]time.Duration, error)

func runners() map[string]runner {
	return map[string]runner{
		"memory/sdk":        memorySDK,
		"memory/watermill":  memoryWatermill,
		"publish/sdk":       publishSDK,
		"publish/watermill": publishWatermill,
		"publish/sarama":    publishSarama,
		"publish/franz-go":  publishFranz,
		"consume/sdk":       consumeSDK,
		"consume/transport": consumeTransport,
		"consume/watermill": consumeWatermill,
		"consume/sarama":    consumeSarama,
		"consume/franz-go":  consumeFranz,
		"bound/sdk":         consumeSDK,
	}
}

// profileEnv names a folder: when set, every row writes a CPU profile of its
// measured part there, named scenario-client-size.cpu.pprof.
const profileEnv = "BENCH_CPUPROFILE_DIR"

// runRow runs one row in this process and prints its result as the last line.
func runRow(raw string) error {
	var s spec
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return fmt.Errorf("-spec: %w", err)
	}
	run, ok := runners()[s.Scenario+"/"+s.Client]
	if !ok {
		return fmt.Errorf("no row %s/%s", s.Scenario, s.Client)
	}
	var before runtime.MemStats
	var began time.Time
	var profile *os.File
	lat, err := run(s, func() {
		runtime.GC()
		runtime.ReadMemStats(&before)
		if dir := os.Getenv(profileEnv); dir != "" {
			if f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%s-%d.cpu.pprof", s.Scenario, s.Client, s.Size))); err == nil && pprof.StartCPUProfile(f) == nil {
				profile = f
			}
		}
		began = time.Now()
	})
	if profile != nil {
		pprof.StopCPUProfile()
		profile.Close()
	}
	if err != nil {
		return err
	}
	elapsed := time.Since(began)
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	r := result{spec: s, Seconds: elapsed.Seconds(), MsgsPerSec: float64(s.N) / elapsed.Seconds(),
		AllocsPerMsg: float64(after.Mallocs-before.Mallocs) / float64(s.N)}
	if len(lat) > 0 {
		slices.Sort(lat)
		r.P50 = ms(lat[len(lat)/2])
		r.P99 = ms(lat[len(lat)*99/100])
	}
	out, _ := json.Marshal(r)
	fmt.Printf("RESULT %s\n", out)
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// measure runs s in a child process and returns its result with the child's peak RSS.
func measure(s spec) (result, error) {
	self, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	raw, _ := json.Marshal(s)
	cmd := exec.Command(self, "-role", "row", "-spec", string(raw))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return result{}, fmt.Errorf("%s/%s %dB: %w", s.Scenario, s.Client, s.Size, err)
	}
	var r result
	for _, l := range strings.Split(string(out), "\n") {
		if j, ok := strings.CutPrefix(l, "RESULT "); ok {
			if err := json.Unmarshal([]byte(j), &r); err != nil {
				return result{}, err
			}
		}
	}
	if r.N == 0 {
		return result{}, fmt.Errorf("%s/%s printed no result: %q", s.Scenario, s.Client, out)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.PeakRSSMiB = float64(ru.Maxrss) / 1024 // Linux reports KiB
	}
	return r, nil
}
