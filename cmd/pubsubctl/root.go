package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pubsubkit/pubsub"
)

// cli is one run of pubsubctl: its flags, outputs and client.
type cli struct {
	url      string
	json     bool
	timeout  time.Duration
	out, err io.Writer
	started  bool // a command's RunE began: cobra accepted the arguments
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := &cli{out: stdout, err: stderr}
	root := c.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "pubsubctl:", visible(err.Error(), true))
		if !c.started {
			fmt.Fprintln(stderr, "Run 'pubsubctl --help' for usage.")
		}
	}
	return exitCode(err, c.started)
}

func (c *cli) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "pubsubctl",
		Short: "Operate pubsubkit: dead letters, consumer lag and tails of topics",
		Long: `pubsubctl operates a pubsubkit deployment: the dead letters of a subscription
(dlq list, show, stats, replay, discard), a consumer group's lag and a tail of a topic.
Reading (dlq list, show, stats, lag, tail) never creates a topic.

The transport URL comes from --url or PUBSUB_URL (kafka://host:9092,...).
What a letter or a message holds is printed with control characters escaped (\x1b);
--json prints valid UTF-8 JSON, a payload that is not UTF-8 in payload_base64.

Exit codes:
  0  success
  1  the operation failed (the transport's error, or --timeout passed)
  2  usage error (bad arguments or flags, no or bad URL)
  3  not found: unknown subscription or topic, no pending letter with that id,
     replay or discard that selected no letter, lag of a group that never committed
     on the topic (the table is printed, counting each whole partition as lag)`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			c.started = true
			if c.timeout <= 0 {
				return usagef("--timeout %s: must be positive", c.timeout)
			}
			return nil
		},
	}
	root.PersistentFlags().StringVar(&c.url, "url", "", "transport URL (default $PUBSUB_URL)")
	root.PersistentFlags().BoolVar(&c.json, "json", false, "print JSON for scripts instead of tables")
	root.PersistentFlags().DurationVar(&c.timeout, "timeout", 30*time.Second, "give up on a command after this long (replay and discard: 10m unless given; tail: while connecting)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(c.dlqCommand(), c.lagCommand(), c.tailCommand())
	return root
}

// args checks the number of positional arguments as a usage error.
func args(names ...string) cobra.PositionalArgs {
	return func(_ *cobra.Command, got []string) error {
		if len(got) != len(names) {
			return usageError{fmt.Errorf("want %d arguments (%s), got %d", len(names), strings.Join(names, " "), len(got))}
		}
		return nil
	}
}

// open opens a client on the URL of --url or PUBSUB_URL, with provisioning off unless
// the command writes (replay, discard) or the URL says otherwise: reading never
// creates a topic.
func (c *cli) open(ctx context.Context, timeout time.Duration, writes bool) (*pubsub.Client, error) {
	u, err := c.transportURL(writes)
	if err != nil {
		return nil, err
	}
	cl, err := pubsub.Open(ctx, u)
	if err != nil && expired(ctx) {
		return nil, timedOut(timeout, err)
	}
	return cl, err
}

// expired reports whether ctx's deadline has passed. It reads the clock rather than
// only ctx.Err(): an operation with the same deadline (a dial) can fail before the
// context's own timer has fired, on a busy machine by milliseconds.
func expired(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

// timedOut says that the command's timeout passed, with the error it cut short.
func timedOut(timeout time.Duration, err error) error {
	return fmt.Errorf("gave up after %s (--timeout): %w", timeout, err)
}

// transportURL is the URL of --url or PUBSUB_URL; for a command that only reads, a
// kafka:// URL without a provision parameter gets provision=false.
func (c *cli) transportURL(writes bool) (string, error) {
	u := c.url
	if u == "" {
		u = os.Getenv("PUBSUB_URL")
	}
	if u == "" {
		return "", usagef("no transport URL: pass --url or set PUBSUB_URL")
	}
	if strings.HasPrefix(u, "memory:") || strings.HasPrefix(u, "gochannel:") {
		return "", usagef("%s lives inside one process: pubsubctl needs a shared transport such as kafka://", strings.SplitN(u, ":", 2)[0])
	}
	if writes {
		return u, nil
	}
	parsed, err := url.Parse(u)
	if err != nil || !strings.EqualFold(parsed.Scheme, "kafka") {
		return u, nil // the transport's own parser reports what is wrong
	}
	q := parsed.Query()
	if !q.Has("provision") {
		q.Set("provision", "false")
		parsed.RawQuery = q.Encode()
	}
	return parsed.String(), nil
}

// withClient runs fn with a client and closes it after.
func (c *cli) withClient(cmd *cobra.Command, fn func(ctx context.Context, cl *pubsub.Client) error) error {
	timeout := c.timeout
	if long := cmd.Annotations["timeout"]; long != "" && !cmd.Flags().Changed("timeout") {
		timeout, _ = time.ParseDuration(long)
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
	defer cancel()
	cl, err := c.open(ctx, timeout, cmd.Annotations["writes"] != "")
	if err != nil {
		return err
	}
	err = fn(ctx, cl)
	if err != nil && expired(ctx) {
		err = timedOut(timeout, err)
	}
	if cerr := cl.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return err
}

// printJSON prints v as indented JSON: valid UTF-8, with nothing a terminal acts on
// (jsonSafe).
func (c *cli) printJSON(v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := c.out.Write(jsonSafe(buf.Bytes()))
	return err
}
