package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
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
		fmt.Fprintln(stderr, "pubsubctl:", err)
		if !c.started {
			fmt.Fprintln(stderr, "Run 'pubsubctl --help' for usage.")
		}
	}
	return exitCode(err, c.started)
}

func (c *cli) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "pubsubctl",
		Short: "Operate pubsubkit dead letters, lag and topics",
		Long: `pubsubctl operates a pubsubkit deployment: dead letters, lag and topics.

The transport URL comes from --url or PUBSUB_URL (kafka://host:9092,...).

Exit codes: 0 success, 1 the operation failed, 2 usage error,
3 not found (unknown subscription or topic, no pending letter with that id).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			c.started = true
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

// open opens a client on the URL of --url or PUBSUB_URL.
func (c *cli) open(ctx context.Context) (*pubsub.Client, error) {
	u := c.url
	if u == "" {
		u = os.Getenv("PUBSUB_URL")
	}
	if u == "" {
		return nil, usagef("no transport URL: pass --url or set PUBSUB_URL")
	}
	if strings.HasPrefix(u, "memory:") || strings.HasPrefix(u, "gochannel:") {
		return nil, usagef("%s lives inside one process: pubsubctl needs a shared transport such as kafka://", strings.SplitN(u, ":", 2)[0])
	}
	return pubsub.Open(ctx, u)
}

// withClient runs fn with a client and closes it after.
func (c *cli) withClient(cmd *cobra.Command, fn func(ctx context.Context, cl *pubsub.Client) error) error {
	timeout := c.timeout
	if long := cmd.Annotations["timeout"]; long != "" && !cmd.Flags().Changed("timeout") {
		timeout, _ = time.ParseDuration(long)
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
	defer cancel()
	cl, err := c.open(ctx)
	if err != nil {
		return err
	}
	err = fn(ctx, cl)
	if cerr := cl.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return err
}

func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.out)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
