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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// spec is one row: which client does what, run in a process of its own.
type spec struct {
	Scenario    string   `json:"scenario"`              // see allScenarios
	Client      string   `json:"client"`                // sdk, watermill, sarama, franz-go, ...
	Size        int      `json:"size"`                  // payload bytes
	Callers     int      `json:"callers,omitempty"`     // concurrent publishers
	Concurrency int      `json:"concurrency,omitempty"` // SDK consumers: Delivery.Concurrency
	Batch       int      `json:"batch,omitempty"`       // batch handlers: WithBatch's max
	N           int      `json:"n"`                     // messages
	Brokers     []string `json:"brokers,omitempty"`
	Topic       string   `json:"topic,omitempty"`
	Group       string   `json:"group,omitempty"`
	Prefetch    int      `json:"prefetch,omitempty"` // SDK consumers: kafka.Config.Prefetch (0: default)
	// FetchMaxWait, when not 0, is the SDK consumers' franz-go FetchMaxWait.
	FetchMaxWait time.Duration `json:"fetch_max_wait,omitempty"`
	// Retained, when not 0, is the SDK memory rows' memory.Config.MaxRetainedBytes
	// (and MaxBytes, when it is larger than the default).
	Retained int64 `json:"retained,omitempty"`
}

// result is what a row measured. Latencies are zero where they do not apply.
type result struct {
	spec
	Seconds      float64 `json:"seconds"`
	MsgsPerSec   float64 `json:"msgs_per_sec"`
	P50          float64 `json:"p50_ms,omitempty"` // milliseconds
	P99          float64 `json:"p99_ms,omitempty"`
	AllocsPerMsg float64 `json:"allocs_per_msg"`
	// CPUPerMsg is the row process's CPU time (user and system, every goroutine) over
	// the measured part, in microseconds per message: less disturbed by other load on
	// the machine than msgs/s.
	CPUPerMsg float64 `json:"cpu_us_per_msg"`
	// OrderErrors counts messages of a key that did not come right after the key's
	// previous one (slow scenario only).
	OrderErrors int     `json:"order_errors,omitempty"`
	MaxGapMs    float64 `json:"max_gap_ms,omitempty"` // longest time between two messages consumed
	PeakRSSMiB  float64 `json:"peak_rss_mib"`         // the row's process, VmHWM
}

// runner runs a row's work and returns the latency of each message (or nil). It
// calls m.start() once the client is ready, right before the measured part, and
// m.stop() right after it, before closing the client.
type runner func(s spec, m *meter) ([]time.Duration, error)

func runners() map[string]runner {
	return map[string]runner{
		"memory/sdk":            memorySDK,
		"memory/watermill":      memoryWatermill,
		"consume/sdk":           consumeSDK,
		"consume/transport":     consumeTransport,
		"consume/watermill":     consumeWatermill,
		"consume/franz-go":      consumeFranz,
		"slow/sdk":              slowSDK,
		"slow/watermill":        slowWatermill,
		"publish/sdk":           publishSDK,
		"publish/franz-go":      publishFranz,
		"publish/franz-headers": publishFranzHeaders,
		"async/sdk":             asyncSDK,
		"async/franz-go":        asyncFranz,
		"async/franz-headers":   asyncFranzHeaders,
		"async/sarama":          asyncSarama,
		"batch/sdk":             batchSDK,
		"batch/franz-go":        batchFranz,
		"batch/franz-headers":   batchFranzHeaders,
		"bound/sdk":             consumeSDK,
		"pgbatch/subscribe":     pgSubscribe,
		"pgbatch/batch":         pgBatch,
	}
}

// profileEnv names a folder: when set, every row writes a CPU profile of its
// measured part there, named scenario-client-size.cpu.pprof.
const profileEnv = "BENCH_CPUPROFILE_DIR"

// memProfileEnv names a folder: when set, every row writes there the allocations of
// its measured part (runtime.MemProfileRate 4096 bytes), named
// scenario-client-size.mem.pprof; read with go tool pprof -sample_index=alloc_objects
// -diff_base.
const memProfileEnv = "BENCH_MEMPROFILE_DIR"

// meter measures a row's measured part: its time, its allocations and, with
// profileEnv, its CPU profile.
type meter struct {
	s             spec
	began, ended  time.Time
	before, after runtime.MemStats
	cpuBefore     time.Duration // user and system CPU time of the process
	cpuAfter      time.Duration
	profile       *os.File
	memProfile    string // the path of its memory profiles, without the suffix
	stopped       sync.Once
	// orderErrors counts messages of a key that did not come right after the key's
	// previous one; rows that check order set it.
	orderErrors atomic.Int64
	// maxGap is the longest time, in nanoseconds, between two messages consumed;
	// consuming rows set it.
	maxGap atomic.Int64
}

func (m *meter) start() {
	runtime.GC()
	runtime.ReadMemStats(&m.before)
	if dir := os.Getenv(profileEnv); dir != "" {
		name := fmt.Sprintf("%s-%s-%d-%d.cpu.pprof", m.s.Scenario, m.s.Client, m.s.Size, max(m.s.Callers, m.s.Concurrency, m.s.Batch))
		if f, err := os.Create(filepath.Join(dir, name)); err == nil && pprof.StartCPUProfile(f) == nil {
			m.profile = f
		}
	}
	if dir := os.Getenv(memProfileEnv); dir != "" {
		m.memProfile = filepath.Join(dir, fmt.Sprintf("%s-%s-%d-%d", m.s.Scenario, m.s.Client, m.s.Size, max(m.s.Callers, m.s.Concurrency)))
		writeHeapProfile(m.memProfile + ".before.mem.pprof")
	}
	m.cpuBefore = cpuTime()
	m.began = time.Now()
}

// stop ends the measured part; only its first call counts.
func (m *meter) stop() {
	m.stopped.Do(func() {
		m.ended = time.Now()
		m.cpuAfter = cpuTime()
		runtime.ReadMemStats(&m.after)
		if m.profile != nil {
			pprof.StopCPUProfile()
			m.profile.Close()
		}
		if m.memProfile != "" {
			writeHeapProfile(m.memProfile + ".mem.pprof")
		}
	})
}

// writeHeapProfile writes the allocations so far to path; the difference of two is
// what happened between them.
func writeHeapProfile(path string) {
	runtime.GC() // the profile counts allocations up to the last GC
	if f, err := os.Create(path); err == nil {
		pprof.Lookup("allocs").WriteTo(f, 0)
		f.Close()
	}
}

// runRow runs one row in this process and prints its result as the last line.
func runRow(raw string) error {
	var s spec
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return fmt.Errorf("%s: %w", specEnv, err)
	}
	run, ok := runners()[s.Scenario+"/"+s.Client]
	if !ok {
		return fmt.Errorf("no row %s/%s", s.Scenario, s.Client)
	}
	if os.Getenv(memProfileEnv) != "" {
		runtime.MemProfileRate = 4096
	}
	m := &meter{s: s}
	lat, err := run(s, m)
	if err != nil {
		return err
	}
	if m.began.IsZero() {
		return fmt.Errorf("row %s/%s never started its measured part", s.Scenario, s.Client)
	}
	m.stop()
	elapsed := m.ended.Sub(m.began)
	r := result{spec: s, Seconds: elapsed.Seconds(), MsgsPerSec: float64(s.N) / elapsed.Seconds(),
		AllocsPerMsg: float64(m.after.Mallocs-m.before.Mallocs) / float64(s.N), OrderErrors: int(m.orderErrors.Load()),
		MaxGapMs: float64(m.maxGap.Load()) / 1e6, CPUPerMsg: float64((m.cpuAfter - m.cpuBefore).Microseconds()) / float64(s.N)}
	if len(lat) > 0 {
		slices.Sort(lat)
		r.P50 = ms(lat[len(lat)/2])
		r.P99 = ms(lat[len(lat)*99/100])
	}
	if r.PeakRSSMiB, err = peakRSSMiB(); err != nil {
		return err
	}
	out, _ := json.Marshal(r)
	fmt.Printf("RESULT %s\n", out)
	return nil
}

// peakRSSMiB is this process's peak resident set (VmHWM of /proc/self/status). The
// parent's getrusage of a child is not used: on Linux it counts the parent's pages
// the child had before exec.
func peakRSSMiB() (float64, error) {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kib, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err != nil {
				return 0, fmt.Errorf("VmHWM %q: %w", v, err)
			}
			return kib / 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/self/status")
}

// cpuTime is the user and system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// measure runs s in a child process and returns its result with the child's peak RSS.
func measure(s spec) (result, error) {
	self, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	raw, _ := json.Marshal(s)
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), roleEnv+"=row", specEnv+"="+string(raw))
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
	return r, nil
}
