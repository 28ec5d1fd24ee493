// Package testenv decides what a test does when a tool or service it needs is missing:
// under CI=true (what .ci/run sets) it fails and names what is missing; elsewhere it is
// skipped with the same words, so that `go test ./...` on a machine without them still
// runs everything else. README.md lists which tests need what.
package testenv

import (
	"fmt"
	"os"
	"testing"
)

// InCI reports whether the tests run under CI=true, where nothing may be skipped for a
// missing tool or service.
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing ends the test because what it needs is not there: a failure in CI, a skip
// elsewhere. The message names the missing tool or service and how to get it.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...) + " (bash .ci/run installs or starts it)"
	if InCI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
