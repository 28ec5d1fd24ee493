// Command pubsubctl operates a pubsubkit deployment from a terminal: the dead letters
// of a subscription (list, show, stats, replay, discard), a group's lag and a tail of
// a topic. It reads the transport URL from --url or PUBSUB_URL. Output is a table for
// people, with every control character of a letter or message shown as an escape
// (\x1b), or valid UTF-8 JSON with --json; errors go to stderr. Reading never creates
// a topic.
//
// Exit codes: 0 success, 1 the operation failed (or --timeout passed), 2 usage error
// (bad arguments or flags, no or bad URL), 3 not found (unknown subscription or topic,
// no pending dead letter with that id, a replay or discard that selected no letter, lag
// of a group that never committed on the topic).
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
