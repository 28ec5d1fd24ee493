package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pubsubkit/pubsub/internal/testenv"
)

// systemPython is Debian's interpreter, the one that sees python3-confluent-kafka; a
// python3 earlier on PATH (pyenv) may lack the module.
const systemPython = "/usr/bin/python3"

// toolTimeout bounds one run of an outside tool.
const toolTimeout = 60 * time.Second

// missing skips the test, or fails it in CI (CI=true), for a tool that is not
// installed.
func missing(t testing.TB, what, debianPackage string, err error) {
	t.Helper()
	testenv.Missing(t, "%s is not available (%v): install the Debian package %s", what, err, debianPackage)
}

var (
	pythonOnce sync.Once
	pythonErr  error
)

// requirePython makes sure Debian's python3 can import confluent_kafka.
func requirePython(t testing.TB) {
	t.Helper()
	pythonOnce.Do(func() {
		out, err := exec.Command(systemPython, "-c", "import confluent_kafka").CombinedOutput()
		if err != nil {
			pythonErr = &toolError{err: err, output: out}
		}
	})
	if pythonErr != nil {
		missing(t, systemPython+" with confluent_kafka", "python3-confluent-kafka", pythonErr)
	}
}

// requireTool makes sure the program name is on PATH.
func requireTool(t testing.TB, name, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		missing(t, name, debianPackage, err)
	}
	return path
}

type toolError struct {
	err    error
	output []byte
}

func (e *toolError) Error() string {
	return e.err.Error() + ": " + strings.TrimSpace(string(e.output))
}

// python runs testdata/script with input as its stdin, encoded as JSON, and returns
// its stdout; the test fails when the script fails.
func python(t testing.TB, script string, input any) []byte {
	t.Helper()
	requirePython(t)
	in, err := json.Marshal(input)
	if err != nil {
		t.Fatalf("encoding the input of %s: %v", script, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, systemPython, filepath.Join("testdata", script))
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s failed: %v\nstderr:\n%s\nstdout:\n%s", script, err, stderr.String(), stdout.String())
	}
	return stdout.Bytes()
}

// jsonLines decodes every line of out into a T.
func jsonLines[T any](t testing.TB, out []byte) []T {
	t.Helper()
	var all []T
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("decoding %q: %v", sc.Text(), err)
		}
		all = append(all, v)
	}
	return all
}

// kcat runs kcat with args and returns its stdout; the test fails when kcat fails.
func kcat(t testing.TB, args ...string) []byte {
	t.Helper()
	return kcatWithInput(t, "", args...)
}

// kcatWithInput runs kcat with args and input on its stdin, and returns its stdout;
// the test fails when kcat fails.
func kcatWithInput(t testing.TB, input string, args ...string) []byte {
	t.Helper()
	path := requireTool(t, "kcat", "kcat")
	ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdin = strings.NewReader(input)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat %s failed: %v\nstderr:\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

// process is an outside program that runs beside the test and prints JSON lines.
type process struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan []byte // stdout, line by line; closed at its end
	stderr lockedBuffer
}

// lockedBuffer is a bytes.Buffer that a process writes while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start runs testdata/script in the background with first, as one JSON line, on its
// stdin; the process is killed, if still running, when the test ends.
func start(t testing.TB, script string, first any) *process {
	t.Helper()
	requirePython(t)
	in, err := json.Marshal(first)
	if err != nil {
		t.Fatalf("encoding the input of %s: %v", script, err)
	}
	p := &process{name: script, cmd: exec.Command(systemPython, filepath.Join("testdata", script)),
		lines: make(chan []byte, 4096)}
	p.cmd.Stderr = &p.stderr
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", script, err)
	}
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- append([]byte(nil), sc.Bytes()...)
		}
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	})
	if _, err := p.stdin.Write(append(in, '\n')); err != nil {
		t.Fatalf("writing to %s: %v", script, err)
	}
	return p
}

// say writes line to the process's stdin.
func (p *process) say(t testing.TB, line string) {
	t.Helper()
	if _, err := io.WriteString(p.stdin, line+"\n"); err != nil {
		t.Fatalf("writing to %s: %v", p.name, err)
	}
}
