// Command pubsubctl operates a pubsubkit deployment from a terminal: the dead letters
// of a subscription (list, show, stats, replay, discard), a group's lag and a tail of
// a topic. It reads the transport URL from --url or PUBSUB_URL. Output is a table for
// people, or JSON with --json; errors go to stderr.
//
// Exit codes: 0 success, 1 the operation failed, 2 usage error (bad arguments or
// flags, no or bad URL), 3 not found (unknown subscription or topic, no pending dead
// letter with that id).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
