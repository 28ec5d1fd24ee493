package pubsub

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/transport"
)

// DefaultPageSize is the number of letters on a page of DeadLetterPage when
// PageQuery.Size is 0.
const DefaultPageSize = 100

// MaxPageSize is the largest PageQuery.Size DeadLetterPage accepts.
const MaxPageSize = 1000

// PageQuery chooses one page of a subscription's pending dead letters, newest first.
type PageQuery struct {
	Size   int    // letters per page: 0 for DefaultPageSize, at most MaxPageSize
	Cursor string // DeadLetterPage.Next of the page before; "" for the first (newest) page
}

// DeadLetterPage is one page of the pending dead letters of a subscription that the
// filters keep, with what the whole listing holds.
type DeadLetterPage struct {
	Letters []DeadLetter      // this page's letters, newest first
	Total   int               // the pending letters the filters keep, over every page
	Groups  []DeadLetterGroup // those letters grouped by reason, as DeadLetterGroups
	// Next is the cursor of the next (older) page; "" on the last page.
	Next string
	// Snapshot records how far the dead-letter topic was read for this page: AsOf
	// with it keeps the letters listed then and leaves out any dead-lettered after,
	// so that an action taken on what a page showed acts on nothing newer.
	Snapshot string
}

// DeadLetterPage returns one page of the pending dead letters of the subscription
// (topic, group) that every filter keeps, newest first, with their total and their
// groups of errors. It reads the dead-letter topic once, as DeadLetters does, and
// keeps only the page's letters, so a request costs one read of the topic however
// many pages there are. Letters that arrive between two pages do not shift the next
// page: the cursor is the last letter shown. A bad size or cursor is an error
// wrapping ErrInvalidOption.
func (c *Client) DeadLetterPage(ctx context.Context, topic, group string, q PageQuery, f ...DeadLetterFilter) (DeadLetterPage, error) {
	size := q.Size
	if size == 0 {
		size = DefaultPageSize
	}
	if size < 0 || size > MaxPageSize {
		return DeadLetterPage{}, fmt.Errorf("pubsub: %w: page size %d: want 1 to %d", ErrInvalidOption, q.Size, MaxPageSize)
	}
	after, err := parseCursor(q.Cursor)
	if err != nil {
		return DeadLetterPage{}, err
	}
	all, _, err := c.pendingLetters(ctx, topic, group)
	if err != nil {
		return DeadLetterPage{}, err
	}
	page := DeadLetterPage{Snapshot: DeadLetterSnapshot(all)}
	letters := filtered(all, f)
	page.Total, page.Groups = len(letters), groupsOf(letters)
	// letters are oldest first: the page is the size letters before the cursor.
	end := len(letters)
	if after != nil {
		end, _ = slices.BinarySearchFunc(letters, *after, olderFirst)
	}
	start := max(end-size, 0)
	page.Letters = slices.Clone(letters[start:end])
	slices.Reverse(page.Letters)
	if start > 0 {
		page.Next = cursorOf(letters[start])
	}
	return page, nil
}

// cursorOf is the cursor of the page after the one that ends with l.
func cursorOf(l DeadLetter) string {
	return base64.RawURLEncoding.EncodeToString([]byte(l.LastFailure.UTC().Format(time.RFC3339Nano) + " " + l.ID))
}

// parseCursor reads a cursor of cursorOf: the letter the next page starts below.
func parseCursor(cursor string) (*DeadLetter, error) {
	if cursor == "" {
		return nil, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	at, id, ok := strings.Cut(string(raw), " ")
	var t time.Time
	if err == nil && ok {
		t, err = time.Parse(time.RFC3339Nano, at)
	}
	if err != nil || !ok {
		return nil, fmt.Errorf("pubsub: %w: %q is not a dead-letter page cursor", ErrInvalidOption, cursor)
	}
	return &DeadLetter{ID: id, LastFailure: t}, nil
}

// DeadLetterSnapshot records how far letters (a listing of DeadLetters) reach in the
// dead-letter topic, for AsOf: for each partition the offset after the newest letter,
// and the newest failure for letters without a position. It reads "t<unix
// nanoseconds>" then ",<partition>:<offset>" for each partition.
func DeadLetterSnapshot(letters []DeadLetter) string {
	var newest time.Time
	next := map[int32]int64{}
	for _, l := range letters {
		if l.LastFailure.After(newest) {
			newest = l.LastFailure
		}
		if l.HasLetterPosition && l.LetterOffset+1 > next[l.LetterPartition] {
			next[l.LetterPartition] = l.LetterOffset + 1
		}
	}
	var b strings.Builder
	b.WriteString("t" + strconv.FormatInt(newest.UnixNano(), 10))
	for _, p := range slices.Sorted(maps.Keys(next)) {
		fmt.Fprintf(&b, ",%d:%d", p, next[p])
	}
	return b.String()
}

// AsOf returns a filter that keeps the letters that were pending when snapshot
// (DeadLetterPage.Snapshot, or what the CLI's dlq list prints) was taken and leaves
// out every letter dead-lettered after it, including a later letter of a message
// listed then. A snapshot that cannot be read is an error wrapping ErrInvalidOption.
func AsOf(snapshot string) (DeadLetterFilter, error) {
	bad := fmt.Errorf("pubsub: %w: %q is not a dead-letter snapshot", ErrInvalidOption, snapshot)
	parts := strings.Split(snapshot, ",")
	nanos, err := strconv.ParseInt(strings.TrimPrefix(parts[0], "t"), 10, 64)
	if err != nil || !strings.HasPrefix(parts[0], "t") {
		return nil, bad
	}
	newest := time.Unix(0, nanos)
	next := map[int32]int64{}
	for _, part := range parts[1:] {
		ps, offs, ok := strings.Cut(part, ":")
		p, perr := strconv.ParseInt(ps, 10, 32)
		o, oerr := strconv.ParseInt(offs, 10, 64)
		if !ok || perr != nil || oerr != nil || p < 0 || o < 0 {
			return nil, bad
		}
		next[int32(p)] = o
	}
	return func(d *DeadLetter) bool {
		if d.HasLetterPosition {
			return d.LetterOffset < next[d.LetterPartition]
		}
		return !d.LastFailure.After(newest)
	}, nil
}

// DeadLetterAt returns the pending dead letter id of the subscription, read where
// the dead-letter topic holds it (DeadLetter.LetterPartition and LetterOffset) when
// the transport implements transport.RecordReader (memory and Kafka do): one record
// and the resolution topic are read, not the dead-letter topic. Where the transport
// cannot, or the position holds another letter, it reads the topic as DeadLetters
// does. A letter that is not pending (resolved, or no such id) is an error wrapping
// ErrNoDeadLetter.
func (c *Client) DeadLetterAt(ctx context.Context, topic, group, id string, partition int32, offset int64) (DeadLetter, error) {
	if err := validName("topic", topic); err != nil {
		return DeadLetter{}, err
	}
	if err := validName("group", group); err != nil {
		return DeadLetter{}, err
	}
	dlq := c.deadLetterTopicOf(topic, group)
	if rr, ok := c.tr.(transport.RecordReader); ok && offset >= 0 {
		m, err := rr.ReadAt(ctx, dlq, partition, offset)
		if ctx.Err() != nil {
			return DeadLetter{}, ctx.Err()
		}
		if err == nil && m.UUID == id && m.Metadata.Get(metadata.DeadLetterTopic) == topic && m.Metadata.Get(metadata.DeadLetterGroup) == group {
			l := deadLetterOf(m)
			upTo, err := c.resolvedUpTo(ctx, topic, group, dlq)
			if err != nil {
				return DeadLetter{}, err
			}
			if at, ok := upTo[id]; ok && !l.LastFailure.After(at) {
				return DeadLetter{}, noLetter(topic, group, id)
			}
			return l, nil
		}
	}
	letters, err := c.DeadLetters(ctx, topic, group, func(d *DeadLetter) bool { return d.ID == id })
	if err != nil {
		return DeadLetter{}, err
	}
	if len(letters) == 0 {
		return DeadLetter{}, noLetter(topic, group, id)
	}
	return letters[0], nil
}

// ErrNoDeadLetter is wrapped by DeadLetterAt for an id that has no pending letter.
var ErrNoDeadLetter = errors.New("no pending dead letter")

func noLetter(topic, group, id string) error {
	return fmt.Errorf("pubsub: %w of %q in group %q has the id %q (replayed or discarded already?)", ErrNoDeadLetter, topic, group, id)
}
