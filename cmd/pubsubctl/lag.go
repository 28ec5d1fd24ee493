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
		Args:  args("TOPIC", "GROUP"),
		RunE: func(cmd *cobra.Command, a []string) error {
			return c.withClient(cmd, func(ctx context.Context, cl *pubsub.Client) error {
				stats, err := cl.Lag(ctx, a[0], a[1])
				if err != nil {
					return err
				}
				var total int64
				for _, p := range stats {
					total += max(p.Lag(), 0)
				}
				if c.json {
					type partJSON struct {
						Partition int32 `json:"partition"`
						Committed int64 `json:"committed"`
						End       int64 `json:"end"`
						Lag       int64 `json:"lag"`
					}
					out := struct {
						Topic      string     `json:"topic"`
						Group      string     `json:"group"`
						Lag        int64      `json:"lag"`
						Partitions []partJSON `json:"partitions"`
					}{Topic: a[0], Group: a[1], Lag: total, Partitions: []partJSON{}}
					for _, p := range stats {
						out.Partitions = append(out.Partitions, partJSON{p.Partition, p.Committed, p.End, lagOf(p)})
					}
					return c.printJSON(out)
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
				return tw.Flush()
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
			cl, err := c.open(openCtx)
			cancel()
			if err != nil {
				return err
			}
			defer cl.Close()
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
		out := map[string]any{"id": m.UUID, "key": key, "metadata": m.Metadata}
		if json.Valid(m.Payload) {
			out["payload"] = json.RawMessage(m.Payload)
		} else {
			out["payload_text"] = string(m.Payload)
		}
		if p, ok := transport.PositionFrom(m.Context()); ok {
			out["partition"], out["offset"] = p.Partition, p.Offset
		}
		b, err := json.Marshal(out)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(c.out, "%s\n", b)
		return err
	}
	at := time.Now()
	if p, ok := transport.PositionFrom(m.Context()); ok && !p.Time.IsZero() {
		at = p.Time
	}
	_, err := fmt.Fprintf(c.out, "%s  key=%s  id=%s  %s\n", when(at), dash(key), m.UUID, firstLine(string(m.Payload), 200))
	return err
}
