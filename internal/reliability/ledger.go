// Package reliability holds what the reliability scenarios share: the record the load
// programs publish, and the ledger in which the consumer program writes down what it
// did, so that a test can count lost and duplicated messages after the consumer was
// killed or drained. RELIABILITY.md at the repository root lists the scenarios.
package reliability

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pubsubkit/pubsub"
)

// Record is the payload of the load topic. Key picks the partition; Seq counts the
// key's messages from 0 in publish order.
type Record struct {
	Key string `json:"k"`
	Seq int    `json:"s"`
	Pad string `json:"p,omitempty"`
}

// Topic is the load topic named name, keyed by Record.Key.
func Topic(name string) pubsub.Topic[Record] {
	return pubsub.NewTopic[Record](name, pubsub.WithKey(func(r Record) string { return r.Key }))
}

// KeyOf names key number i.
func KeyOf(i int) string { return fmt.Sprintf("k%04d", i) }

// Ledger appends one line per event to a file. Each line is one write(2) on a file
// opened with O_APPEND, so what was written survives a SIGKILL of the writer: the
// kernel has it. Lines:
//
//	start <pid> <key> <seq> <attempt> <unix nanos>
//	done  <pid> <key> <seq> <attempt> <cancelled 0|1> <unix nanos>
//	term  <pid> <unix nanos>     (the drain began)
//	exit  <pid> <unix nanos>     (the client closed cleanly)
//	published <pid> <key> <seq> <unix nanos>   (a producer's Publish returned nil)
type Ledger struct {
	mu  sync.Mutex
	f   *os.File
	pid int
}

// OpenLedger opens (creating or appending to) the ledger at path.
func OpenLedger(path string) (*Ledger, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	return &Ledger{f: f, pid: os.Getpid()}, nil
}

func (l *Ledger) write(format string, args ...any) error {
	line := fmt.Sprintf(format, args...) + " " + strconv.FormatInt(time.Now().UnixNano(), 10) + "\n"
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err := l.f.WriteString(line)
	return err
}

// Start records that a handler began with r.
func (l *Ledger) Start(r Record, attempt int) error {
	return l.write("start %d %s %d %d", l.pid, r.Key, r.Seq, attempt)
}

// Done records that a handler finished with r; cancelled says its context had ended.
func (l *Ledger) Done(r Record, attempt int, cancelled bool) error {
	c := 0
	if cancelled {
		c = 1
	}
	return l.write("done %d %s %d %d %d", l.pid, r.Key, r.Seq, attempt, c)
}

// Published records that a producer's Publish of r returned nil.
func (l *Ledger) Published(r Record) error {
	return l.write("published %d %s %d", l.pid, r.Key, r.Seq)
}

// Term records that the drain began.
func (l *Ledger) Term() error { return l.write("term %d", l.pid) }

// Exit records that the client closed cleanly.
func (l *Ledger) Exit() error { return l.write("exit %d", l.pid) }

// Close closes the file.
func (l *Ledger) Close() error { return l.f.Close() }

// Entry is one parsed ledger line.
type Entry struct {
	Kind      string // start, done, term, exit, published
	PID       int
	Key       string
	Seq       int
	Attempt   int
	Cancelled bool
	At        time.Time
}

// ReadLedger parses the ledger at path, in the order its lines were written.
func ReadLedger(path string) ([]Entry, error) {
	return NewLedgerReader(path).Entries()
}

// LedgerReader reads a ledger that is still growing: each call of Entries parses
// only what was written since the one before.
type LedgerReader struct {
	path    string
	off     int64  // bytes read so far
	partial []byte // the start of a line not yet complete
	lines   int
	entries []Entry
}

// NewLedgerReader returns a reader of the ledger at path.
func NewLedgerReader(path string) *LedgerReader { return &LedgerReader{path: path} }

// Path is the ledger's file.
func (r *LedgerReader) Path() string { return r.path }

// Entries returns every complete line written so far, parsed, in order. The slice
// is the reader's own and grows with later calls.
func (r *LedgerReader) Entries() ([]Entry, error) {
	f, err := os.Open(r.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Seek(r.off, io.SeekStart); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	r.off += int64(len(data))
	data = append(r.partial, data...)
	end := bytes.LastIndexByte(data, '\n') + 1
	r.partial = append([]byte(nil), data[end:]...)
	for line := range strings.SplitSeq(string(data[:end]), "\n") {
		if line == "" {
			continue
		}
		r.lines++
		e, err := parseEntry(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", r.path, r.lines, err)
		}
		r.entries = append(r.entries, e)
	}
	return r.entries, nil
}

func parseEntry(line string) (Entry, error) {
	f := strings.Fields(line)
	if len(f) < 3 {
		return Entry{}, fmt.Errorf("short line %q", line)
	}
	e := Entry{Kind: f[0]}
	want := map[string]int{"start": 6, "done": 7, "term": 3, "exit": 3, "published": 5}[e.Kind]
	if want == 0 || len(f) != want {
		return Entry{}, fmt.Errorf("malformed line %q", line)
	}
	ints := make([]int64, len(f))
	for i := 1; i < len(f); i++ {
		if i == 2 && want > 3 {
			continue // the key
		}
		v, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return Entry{}, fmt.Errorf("malformed line %q: %w", line, err)
		}
		ints[i] = v
	}
	e.PID = int(ints[1])
	e.At = time.Unix(0, ints[len(f)-1])
	switch want {
	case 5:
		e.Key, e.Seq = f[2], int(ints[3])
	case 6, 7:
		e.Key, e.Seq, e.Attempt = f[2], int(ints[3]), int(ints[4])
	}
	if e.Kind == "done" {
		e.Cancelled = ints[5] == 1
	}
	return e, nil
}
