package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/spf13/cobra"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/transport"
)

func (c *cli) lagCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "lag TOPIC GROUP",
		Short: "Show where a consumer group stands on each partition of a topic, and how far behind",
		Long: `Show where a consumer group stands on each partition of a topic, and how far behind.

A partition the group never committed on counts as lag in full (its end), shown with
committed "-" in the table and "committed": null in the JSON. A group that never
committed on any partition of the topic is said so, and exits 3 after printing.`,
		Args: args("TOPIC", "GROUP"),
		RunE: func(cmd *cobra.Command, a []string) error {
			return c.withClient(cmd, func(ctx context.Context, cl *pubsub.Client) error {
				stats, err := cl.Lag(ctx, a[0], a[1])
				if err != nil {
					return err
				}
				var total int64
				committedAny := false
				for _, p := range stats {
					total += lagOf(p)
					committedAny = committedAny || p.Committed >= 0
				}
				var noCommits error
				if !committedAny {
					noCommits = fmt.Errorf("%w: group %q has never committed an offset on %q: its lag is every message the topic holds",
						errNotFound, a[1], a[0])
				}
				if c.json {
					type partJSON struct {
						Partition int32  `json:"partition"`
						Committed *int64 `json:"committed"` // null: never committed
						End       int64  `json:"end"`
						Lag       int64  `json:"lag"`
					}
					out := struct {
						Topic      string     `json:"topic"`
						Group      string     `json:"group"`
						Committed  bool       `json:"committed"` // whether the group ever committed on the topic
						Lag        int64      `json:"lag"`
						Partitions []partJSON `json:"partitions"`
					}{Topic: a[0], Group: a[1], Committed: committedAny, Lag: total, Partitions: []partJSON{}}
					for _, p := range stats {
						part := partJSON{Partition: p.Partition, End: p.End, Lag: lagOf(p)}
						if p.Committed >= 0 {
							part.Committed = &p.Committed
						}
						out.Partitions = append(out.Partitions, part)
					}
					if err := c.printJSON(out); err != nil {
						return err
					}
					return noCommits
				}
				tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', tabwriter.AlignRight)
				fmt.Fprintln(tw, "PARTITION\tCOMMITTED\tEND\tLAG\t")
				for _, p := range stats {
					committed := fmt.Sprint(p.Committed)
					if p.Committed < 0 {
						committed = "-"
					}
					fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t\n", p.Partition, committed, p.End, lagOf(p))
				}
				fmt.Fprintf(tw, "total\t\t\t%d\t\n", total)
				if err := tw.Flush(); err != nil {
					return err
				}
				if !committedAny {
					fmt.Fprintln(c.out, "(no commits: the group has never committed on this topic; each partition counts in full)")
				}
				return noCommits
			})
		},
	}
}

// lagOf is the partition's lag, counting a group that never committed as behind by
// the whole partition.
func lagOf(p transport.PartitionStats) int64 {
	if p.Committed < 0 {
		return max(p.End, 0)
	}
	return max(p.Lag(), 0)
}

func (c *cli) tailCommand() *cobra.Command {
	var fromStart bool
	var count int
	cmd := &cobra.Command{
		Use:   "tail TOPIC",
		Short: "Print the messages published to a topic from now on, without joining a consumer group",
		Args:  args("TOPIC"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if count < 0 {
				return usagef("--count %d: must not be negative", count)
			}
			openCtx, cancel := context.WithTimeout(cmd.Context(), c.timeout)
			defer cancel()
			cl, err := c.open(openCtx, c.timeout, false)
			if err != nil {
				return err
			}
			defer cl.Close()
			exists, err := cl.TopicExists(openCtx, a[0])
			switch {
			case err != nil && expired(openCtx):
				return timedOut(c.timeout, err)
			case err != nil:
				return err
			case !exists:
				return fmt.Errorf("%w: topic %q does not exist (tail creates none)", errNotFound, a[0])
			}
			cancel()
			seen := 0
			errDone := fmt.Errorf("done")
			err = cl.Tail(cmd.Context(), a[0], fromStart, func(m *message.Message) error {
				if err := c.printMessage(m); err != nil {
					return err
				}
				seen++
				if count > 0 && seen >= count {
					return errDone
				}
				return nil
			})
			if err == errDone {
				return nil
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&fromStart, "from-start", false, "print what the topic holds first")
	cmd.Flags().IntVar(&count, "count", 0, "stop after this many messages (0: until interrupted)")
	return cmd
}

// printMessage prints one tailed message: a line for people, or one JSON object per
// line with --json.
func (c *cli) printMessage(m *message.Message) error {
	key := m.Metadata.Get(metadata.Key)
	if c.json {
		out := struct {
			ID        string            `json:"id"`
			Key       string            `json:"key"`
			Metadata  map[string]string `json:"metadata"`
			Partition *int32            `json:"partition,omitempty"`
			Offset    *int64            `json:"offset,omitempty"`
			payloadJSON
		}{ID: m.UUID, Key: key, Metadata: m.Metadata, payloadJSON: payloadOf(m.Payload)}
		if p, ok := transport.PositionFrom(m.Context()); ok {
			out.Partition, out.Offset = &p.Partition, &p.Offset
		}
		b, err := json.Marshal(out)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(c.out, "%s\n", jsonSafe(b))
		return err
	}
	at := time.Now()
	if p, ok := transport.PositionFrom(m.Context()); ok && !p.Time.IsZero() {
		at = p.Time
	}
	_, err := fmt.Fprintf(c.out, "%s  key=%s  id=%s  %s\n", when(at), cell(dash(key)), cell(m.UUID), cell(firstLine(string(m.Payload), 200)))
	return err
}
