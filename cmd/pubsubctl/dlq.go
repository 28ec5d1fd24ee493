package main

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/pubsubkit/pubsub"
)

// filterFlags are the dead-letter filters of list, stats, replay and discard.
type filterFlags struct {
	reason, key, cid, since, until string
}

func (f *filterFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.reason, "reason", "", "only letters whose reason holds this text (any case)")
	cmd.Flags().StringVar(&f.key, "key", "", "only letters with this partition key")
	cmd.Flags().StringVar(&f.cid, "cid", "", "only letters with this correlation id")
	cmd.Flags().StringVar(&f.since, "since", "", "only letters that failed at or after this time (RFC 3339, or a duration ago such as 2h)")
	cmd.Flags().StringVar(&f.until, "until", "", "only letters that failed before this time (RFC 3339, or a duration ago)")
}

// describe says which letters the command's selecting flags choose, as given:
// `--error "x" --key "y"`.
func (f *filterFlags) describe(cmd *cobra.Command) string {
	var parts []string
	for _, name := range []string{"all", "id", "first", "error", "reason", "key", "cid", "since", "until", "as-of"} {
		fl := cmd.Flags().Lookup(name)
		if fl == nil || !fl.Changed {
			continue
		}
		switch fl.Value.Type() {
		case "bool":
			parts = append(parts, "--"+name)
		case "int":
			parts = append(parts, "--"+name+" "+fl.Value.String())
		case "stringSlice":
			parts = append(parts, "--"+name+" "+strings.Trim(fl.Value.String(), "[]"))
		default:
			parts = append(parts, fmt.Sprintf("--%s %q", name, fl.Value.String()))
		}
	}
	return strings.Join(parts, " ")
}

func (f *filterFlags) filters() ([]pubsub.DeadLetterFilter, error) {
	q := pubsub.DeadLetterQuery{Reason: f.reason, Key: f.key, CorrelationID: f.cid}
	for _, t := range []struct {
		flag, value string
		at          *time.Time
	}{{"since", f.since, &q.Since}, {"until", f.until, &q.Until}} {
		if t.value == "" {
			continue
		}
		at, err := parseWhen(t.value)
		if err != nil {
			return nil, usagef("--%s %q: want an RFC 3339 time or a duration such as 90m", t.flag, t.value)
		}
		*t.at = at
	}
	return q.Filters(), nil
}

// parseWhen reads an RFC 3339 time, or a duration meaning that long ago.
func parseWhen(s string) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

func (c *cli) dlqCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "dlq", Short: "List, inspect, replay and discard dead letters of a subscription",
		RunE: func(_ *cobra.Command, a []string) error {
			if len(a) == 0 {
				return usagef("dlq needs a command: list, show, stats, replay or discard")
			}
			return usagef("unknown dlq command %q (want list, show, stats, replay or discard)", a[0])
		}}
	cmd.AddCommand(c.dlqList(), c.dlqShow(), c.dlqStats(), c.dlqResolve(true), c.dlqResolve(false))
	return cmd
}

func (c *cli) dlqList() *cobra.Command {
	var f filterFlags
	cmd := &cobra.Command{
		Use:   "list TOPIC GROUP",
		Short: "List the pending dead letters of a subscription, oldest first",
		Args:  args("TOPIC", "GROUP"),
		RunE: func(cmd *cobra.Command, a []string) error {
			filters, err := f.filters()
			if err != nil {
				return err
			}
			return c.withClient(cmd, func(ctx context.Context, cl *pubsub.Client) error {
				letters, err := cl.DeadLetters(ctx, a[0], a[1], filters...)
				if err != nil {
					return err
				}
				if c.json {
					out := make([]letterJSON, len(letters))
					for i, l := range letters {
						out[i] = toJSON(l)
					}
					if err := c.printJSON(out); err != nil {
						return err
					}
					return c.listed(len(letters), letters)
				}
				tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tKEY\tATTEMPTS\tLAST FAILURE\tREASON")
				for _, l := range letters {
					reason := cell(firstLine(l.Reason, 80))
					if l.Permanent {
						reason = "[permanent] " + reason
					}
					fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", cell(l.ID), cell(dash(l.Key)), l.Attempts, when(l.LastFailure), reason)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				return c.listed(len(letters), letters)
			})
		},
	}
	f.register(cmd)
	return cmd
}

// listed tells on stderr how many letters were listed and the snapshot that
// replay and discard take with --as-of to act on exactly these.
func (c *cli) listed(n int, letters []pubsub.DeadLetter) error {
	_, err := fmt.Fprintf(c.err, "%d pending dead letter(s); --as-of %s acts on these only\n", n, pubsub.DeadLetterSnapshot(letters))
	return err
}

func (c *cli) dlqShow() *cobra.Command {
	return &cobra.Command{
		Use:   "show TOPIC GROUP ID",
		Short: "Show one pending dead letter: reason, attempts, times, headers and payload",
		Args:  args("TOPIC", "GROUP", "ID"),
		RunE: func(cmd *cobra.Command, a []string) error {
			return c.withClient(cmd, func(ctx context.Context, cl *pubsub.Client) error {
				letters, err := cl.DeadLetters(ctx, a[0], a[1], func(d *pubsub.DeadLetter) bool { return d.ID == a[2] })
				if err != nil {
					return err
				}
				if len(letters) == 0 {
					return fmt.Errorf("%w: no pending dead letter of %q in group %q has the id %q", errNotFound, a[0], a[1], a[2])
				}
				l := letters[0]
				if c.json {
					return c.printJSON(toJSON(l))
				}
				tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
				position := "-"
				if l.HasPosition {
					position = fmt.Sprintf("partition %d, offset %d", l.Partition, l.Offset)
				}
				for _, row := range [][2]string{{"ID", l.ID}, {"Topic", l.Topic}, {"Group", l.Group}, {"Key", dash(l.Key)},
					{"Correlation id", dash(l.CorrelationID)}, {"Attempts", strconv.Itoa(l.Attempts)},
					{"Permanent", strconv.FormatBool(l.Permanent)}, {"First failure", when(l.FirstFailure)},
					{"Last failure", when(l.LastFailure)}, {"Original record", position}} {
					fmt.Fprintf(tw, "%s:\t%s\n", row[0], cell(row[1]))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				fmt.Fprintf(c.out, "\nReason:\n%s\n", visible(l.Reason, true))
				fmt.Fprintln(c.out, "\nHeaders:")
				tw = tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
				for _, k := range slices.Sorted(mapsKeys(l.Metadata)) {
					fmt.Fprintf(tw, "  %s\t%s\n", cell(k), cell(l.Metadata[k]))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				fmt.Fprintln(c.out, "\nPayload:")
				fmt.Fprintln(c.out, visible(pretty(l.Payload), true))
				return nil
			})
		},
	}
}

func (c *cli) dlqStats() *cobra.Command {
	var f filterFlags
	cmd := &cobra.Command{
		Use:   "stats TOPIC GROUP",
		Short: "Count the pending dead letters by error (reasons with ids and numbers masked), the largest group first",
		Args:  args("TOPIC", "GROUP"),
		RunE: func(cmd *cobra.Command, a []string) error {
			filters, err := f.filters()
			if err != nil {
				return err
			}
			return c.withClient(cmd, func(ctx context.Context, cl *pubsub.Client) error {
				groups, err := cl.DeadLetterGroups(ctx, a[0], a[1], filters...)
				if err != nil {
					return err
				}
				if c.json {
					type groupJSON struct {
						Reason  string    `json:"reason"`
						Example string    `json:"example"`
						Count   int       `json:"count"`
						IDs     []string  `json:"ids"`
						First   time.Time `json:"first"`
						Last    time.Time `json:"last"`
					}
					out := make([]groupJSON, len(groups))
					for i, g := range groups {
						out[i] = groupJSON{g.Reason, g.Example, g.Count, g.IDs, g.First, g.Last}
					}
					return c.printJSON(out)
				}
				tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "COUNT\tFIRST\tLAST\tREASON")
				total := 0
				for _, g := range groups {
					total += g.Count
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", g.Count, when(g.First), when(g.Last), cell(g.Reason))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				fmt.Fprintf(c.err, "%d pending dead letter(s) in %d group(s)\n", total, len(groups))
				return nil
			})
		},
	}
	f.register(cmd)
	return cmd
}

// dlqResolve is "replay" (replay true) or "discard".
func (c *cli) dlqResolve(replay bool) *cobra.Command {
	var (
		f                 filterFlags
		all               bool
		ids               []string
		first             int
		errGroup, by, why string
		payloadFile       string
		asOf              string
	)
	name, short := "discard", "Resolve dead letters without replaying them (they leave the list; who and why are recorded)"
	if replay {
		name, short = "replay", "Send dead letters back to their subscription (who and why are recorded)"
	}
	cmd := &cobra.Command{
		Use:         name + " TOPIC GROUP (--all | --id ID... | --first N | --error MASKED-REASON) [filters] [--as-of SNAPSHOT]",
		Short:       short,
		Args:        args("TOPIC", "GROUP"),
		Annotations: map[string]string{"timeout": "10m", "writes": "yes"}, // a long replay publishes one letter at a time
		RunE: func(cmd *cobra.Command, a []string) error {
			filters, err := f.filters()
			if err != nil {
				return err
			}
			chosen := 0
			for _, on := range []bool{all, len(ids) > 0, first > 0, errGroup != ""} {
				if on {
					chosen++
				}
			}
			if chosen != 1 {
				return usagef("choose the letters with exactly one of --all, --id, --first and --error")
			}
			if (len(filters) > 0 || asOf != "") && !all && errGroup == "" {
				return usagef("--reason, --key, --cid, --since, --until and --as-of narrow --all or --error only")
			}
			if asOf != "" {
				keep, err := pubsub.AsOf(asOf)
				if err != nil {
					return usagef("--as-of %q: not a snapshot as dlq list prints it", asOf)
				}
				filters = append(filters, keep)
			}
			var sel pubsub.ReplaySelector
			switch {
			case all:
				sel = pubsub.ReplayMatching(filters...)
			case errGroup != "":
				sel = pubsub.ReplayMatching(append(filters, pubsub.ByReasonGroup(errGroup))...)
			case len(ids) > 0:
				sel = pubsub.ReplayIDs(ids...)
			default:
				sel = pubsub.ReplayFirst(first)
			}
			if payloadFile != "" {
				if len(ids) != 1 {
					return usagef("--payload-file replays one letter: give exactly one --id")
				}
				payload, err := os.ReadFile(payloadFile)
				if err != nil {
					return usageError{err}
				}
				sel = sel.WithPayload(payload)
			}
			if by == "" {
				by = defaultBy()
			}
			sel = sel.Note(by, why)
			return c.withClient(cmd, func(ctx context.Context, cl *pubsub.Client) error {
				if len(ids) > 0 {
					if err := checkPending(ctx, cl, a[0], a[1], ids); err != nil {
						return err
					}
				}
				bar := newBar(c, name)
				sel = sel.OnProgress(bar.update)
				var n int
				if replay {
					n, err = cl.Replay(ctx, a[0], a[1], sel)
				} else {
					n, err = cl.Discard(ctx, a[0], a[1], sel)
				}
				bar.finish()
				done := strings.TrimSuffix(name, "e") + "ed"
				if err == nil && n == 0 {
					err = fmt.Errorf("%w: no pending dead letter of %q in group %q is selected by %s", errNotFound, a[0], a[1], f.describe(cmd))
				}
				if c.json {
					out := map[string]any{done: n, "selected_by": f.describe(cmd)}
					if err != nil {
						out["error"] = err.Error()
					}
					if jerr := c.printJSON(out); jerr != nil && err == nil {
						err = jerr
					}
				} else {
					fmt.Fprintf(c.out, "%s %d dead letter(s) selected by %s\n", done, n, cell(f.describe(cmd)))
				}
				return err
			})
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "every pending letter (narrowed by the filters)")
	cmd.Flags().StringSliceVar(&ids, "id", nil, "the letters with these message ids (repeat or comma-separate)")
	cmd.Flags().IntVar(&first, "first", 0, "the N oldest pending letters")
	cmd.Flags().StringVar(&errGroup, "error", "", "every letter of one group of errors, as dlq stats prints its reason")
	cmd.Flags().StringVar(&asOf, "as-of", "", "only letters listed by the dlq list that printed this snapshot (on stderr), none dead-lettered since")
	cmd.Flags().StringVar(&by, "by", "", "who resolves them, for the record (default user@host)")
	cmd.Flags().StringVar(&why, "why", "", "why, for the record")
	if replay {
		cmd.Flags().StringVar(&payloadFile, "payload-file", "", "replay the one --id letter with this file's content as its payload (checked as JSON when the letter is JSON)")
	}
	return cmd
}

// checkPending fails with errNotFound unless every id is a pending letter.
func checkPending(ctx context.Context, cl *pubsub.Client, topic, group string, ids []string) error {
	letters, err := cl.DeadLetters(ctx, topic, group)
	if err != nil {
		return err
	}
	pending := map[string]bool{}
	for _, l := range letters {
		pending[l.ID] = true
	}
	var missing []string
	for _, id := range ids {
		if !pending[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: no pending dead letter of %q in group %q has the id %s", errNotFound, topic, group, strings.Join(missing, ", "))
	}
	return nil
}

func defaultBy() string {
	name := "pubsubctl"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if host, err := os.Hostname(); err == nil {
		name += "@" + host
	}
	return name
}

// letterJSON is a dead letter as --json prints it.
type letterJSON struct {
	ID            string            `json:"id"`
	Topic         string            `json:"topic"`
	Group         string            `json:"group"`
	Key           string            `json:"key,omitempty"`
	CorrelationID string            `json:"correlation_id,omitempty"`
	Attempts      int               `json:"attempts"`
	Reason        string            `json:"reason"`
	Permanent     bool              `json:"permanent"`
	FirstFailure  time.Time         `json:"first_failure"`
	LastFailure   time.Time         `json:"last_failure"`
	Partition     *int32            `json:"partition,omitempty"`
	Offset        *int64            `json:"offset,omitempty"`
	Metadata      map[string]string `json:"metadata"`
	payloadJSON
}

func toJSON(l pubsub.DeadLetter) letterJSON {
	j := letterJSON{ID: l.ID, Topic: l.Topic, Group: l.Group, Key: l.Key, CorrelationID: l.CorrelationID, Attempts: l.Attempts,
		Reason: l.Reason, Permanent: l.Permanent, FirstFailure: l.FirstFailure, LastFailure: l.LastFailure, Metadata: l.Metadata}
	if l.HasPosition {
		j.Partition, j.Offset = &l.Partition, &l.Offset
	}
	j.payloadJSON = payloadOf(l.Payload)
	return j
}
