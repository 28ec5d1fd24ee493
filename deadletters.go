package pubsub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/transport"
)

// DeadLetter is a message a subscription gave up on, as its dead-letter topic holds it.
type DeadLetter struct {
	ID            string
	CorrelationID string
	Key           string
	Topic         string // the topic it was consumed from
	Group         string // the group that failed it
	Attempts      int
	Reason        string // the last error, cut at metadata.MaxReasonBytes
	Permanent     bool   // failed with a Permanent error, a decode failure or a panic marked permanent
	FirstFailure  time.Time
	LastFailure   time.Time
	// Partition and Offset locate the original record where the transport has them;
	// HasPosition says whether it does.
	Partition   int32
	Offset      int64
	HasPosition bool
	// LetterPartition and LetterOffset locate the letter itself in the dead-letter
	// topic where the transport has them (HasLetterPosition): DeadLetterAt reads it
	// there alone.
	LetterPartition   int32
	LetterOffset      int64
	HasLetterPosition bool
	Payload           []byte            // byte for byte as published
	Metadata          map[string]string // the original metadata and the dead-letter keys
}

// DeadLetterFilter narrows what DeadLetters lists; a letter is listed when every
// filter keeps it.
type DeadLetterFilter func(*DeadLetter) bool

// ByReason keeps the letters whose reason holds substr, ignoring case.
func ByReason(substr string) DeadLetterFilter {
	substr = strings.ToLower(substr)
	return func(d *DeadLetter) bool { return strings.Contains(strings.ToLower(d.Reason), substr) }
}

// ByKey keeps the letters with partition key key.
func ByKey(key string) DeadLetterFilter { return func(d *DeadLetter) bool { return d.Key == key } }

// ByCorrelationID keeps the letters of one conversation.
func ByCorrelationID(cid string) DeadLetterFilter {
	return func(d *DeadLetter) bool { return d.CorrelationID == cid }
}

// Since keeps the letters that failed (for the last time) at or after t.
func Since(t time.Time) DeadLetterFilter {
	return func(d *DeadLetter) bool { return !d.LastFailure.Before(t) }
}

// Until keeps the letters that failed (for the last time) before t.
func Until(t time.Time) DeadLetterFilter {
	return func(d *DeadLetter) bool { return d.LastFailure.Before(t) }
}

// DeadLetterQuery is a dead-letter filter given field by field, as a form or a
// command line gives it: each field that is set narrows the list (ByReason, ByKey,
// ByCorrelationID, Since, Until); the zero query lets every letter through.
type DeadLetterQuery struct {
	Reason, Key, CorrelationID string
	Since, Until               time.Time
}

// Filters returns the query's filters, for DeadLetters, DeadLetterGroups and
// ReplayMatching.
func (q DeadLetterQuery) Filters() []DeadLetterFilter {
	var out []DeadLetterFilter
	if q.Reason != "" {
		out = append(out, ByReason(q.Reason))
	}
	if q.Key != "" {
		out = append(out, ByKey(q.Key))
	}
	if q.CorrelationID != "" {
		out = append(out, ByCorrelationID(q.CorrelationID))
	}
	if !q.Since.IsZero() {
		out = append(out, Since(q.Since))
	}
	if !q.Until.IsZero() {
		out = append(out, Until(q.Until))
	}
	return out
}

// ByReasonGroup keeps the letters whose reason, masked as DeadLetterGroups groups
// them, is group: every letter of one group of errors.
func ByReasonGroup(group string) DeadLetterFilter {
	return func(d *DeadLetter) bool { return MaskReason(d.Reason) == group }
}

// DeadLetterGroup is the dead letters of a subscription that failed for one reason,
// once the reason's ids, numbers and times are masked (MaskReason).
type DeadLetterGroup struct {
	Reason      string // the masked reason, as ByReasonGroup takes it
	Example     string // the reason of the newest letter, unmasked
	Count       int
	IDs         []string // oldest first
	First, Last time.Time
}

// Resolution is a dead letter resolved by Replay or Discard: which, how, when, by
// whom and why.
type Resolution struct {
	ID       string
	Replayed bool // else discarded
	At       time.Time
	By, Note string
	// Failure is the LastFailure of the letter resolved: a letter dead-lettered again
	// later is pending again.
	Failure time.Time
}

// ReplaySelector chooses the dead letters Replay sends back, or Discard resolves.
type ReplaySelector struct {
	all     bool
	ids     []string
	first   int
	filters []DeadLetterFilter
	by      string
	note    string
	payload []byte // with exactly one id: the edited payload to replay

	progress func(done, total int) // OnProgress's
}

// ReplayAll selects every pending dead letter.
func ReplayAll() ReplaySelector { return ReplaySelector{all: true} }

// ReplayIDs selects the pending dead letters with these message ids.
func ReplayIDs(ids ...string) ReplaySelector { return ReplaySelector{ids: ids} }

// ReplayFirst selects the n oldest pending dead letters.
func ReplayFirst(n int) ReplaySelector { return ReplaySelector{first: n} }

// ReplayMatching selects every pending dead letter that the filters keep, such as
// ByReasonGroup(g) for all the letters of one group of errors.
func ReplayMatching(filters ...DeadLetterFilter) ReplaySelector {
	return ReplaySelector{all: true, filters: filters}
}

// Note records who resolves the letters and why; the resolutions keep it.
func (s ReplaySelector) Note(by, why string) ReplaySelector {
	s.by, s.note = by, why
	return s
}

// WithPayload replays the one letter selected with ReplayIDs with payload instead of
// its own, for a fix an operator made by hand. Replay checks it first: against the
// subscription's codec and type when this client subscribed, else as JSON when the
// letter's content type is JSON.
func (s ReplaySelector) WithPayload(payload []byte) ReplaySelector {
	s.payload = slices.Clone(payload)
	return s
}

// ResolutionTopicName returns the topic that records which dead letters of a
// dead-letter topic were replayed or discarded: "<dead-letter topic>.resolved". It is
// the subscription's own: consumers of the dead-letter topic see dead letters only.
func ResolutionTopicName(deadLetterTopic string) string { return deadLetterTopic + ".resolved" }

// DeadLetters returns the pending dead letters of the subscription (topic, group),
// those neither replayed nor discarded since they were dead-lettered, oldest first,
// that every filter keeps. It reads the subscription's dead-letter topic
// (Delivery.DeadLetterTopic when this client subscribed with one, else
// "<topic>.<group>.dlq") and its resolution topic without consuming them, so the
// transport must implement transport.Reader (memory and Kafka do). A subscription that
// this client did not make and whose dead-letter topic does not exist is an error
// wrapping ErrUnknownSubscription.
func (c *Client) DeadLetters(ctx context.Context, topic, group string, f ...DeadLetterFilter) ([]DeadLetter, error) {
	letters, _, err := c.pendingLetters(ctx, topic, group)
	if err != nil {
		return nil, err
	}
	return filtered(letters, f), nil
}

// DeadLetterGroups returns the pending dead letters of the subscription that every
// filter keeps, grouped by their reason with ids, numbers and times masked
// (MaskReason), the largest group first.
func (c *Client) DeadLetterGroups(ctx context.Context, topic, group string, f ...DeadLetterFilter) ([]DeadLetterGroup, error) {
	letters, err := c.DeadLetters(ctx, topic, group, f...)
	if err != nil {
		return nil, err
	}
	return groupsOf(letters), nil
}

// groupsOf groups letters (oldest first) by their masked reason, the largest group
// first.
func groupsOf(letters []DeadLetter) []DeadLetterGroup {
	byReason := map[string]*DeadLetterGroup{}
	var groups []*DeadLetterGroup
	for _, l := range letters {
		key := MaskReason(l.Reason)
		g, ok := byReason[key]
		if !ok {
			g = &DeadLetterGroup{Reason: key, First: l.LastFailure}
			byReason[key] = g
			groups = append(groups, g)
		}
		g.Count++
		g.IDs = append(g.IDs, l.ID)
		g.Last, g.Example = l.LastFailure, l.Reason
	}
	slices.SortStableFunc(groups, func(a, b *DeadLetterGroup) int { return b.Count - a.Count })
	out := make([]DeadLetterGroup, len(groups))
	for i, g := range groups {
		out[i] = *g
	}
	return out
}

// masks are what MaskReason replaces, in order.
var masks = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`), "<uuid>"},
	{regexp.MustCompile(`\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?`), "<time>"},
	{regexp.MustCompile(`\b0x[0-9a-fA-F]+\b`), "<hex>"},
	{regexp.MustCompile(`\b[0-9a-fA-F]*\d[0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*\b|\b[0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*\d[0-9a-fA-F]*\b`), "<hex>"},
	{regexp.MustCompile(`\d+(\.\d+)?`), "<n>"},
}

// MaskReason is reason with what varies from one failure to the next (UUIDs, times,
// hexadecimal ids, numbers) replaced by <uuid>, <time>, <hex> and <n>, so that the
// failures of one cause share one text: "order 42 not found" and "order 43 not found"
// are both "order <n> not found". It reads the first line only (a panic's stack
// follows it).
func MaskReason(reason string) string {
	reason, _, _ = strings.Cut(reason, "\n")
	for _, m := range masks {
		reason = m.re.ReplaceAllString(reason, m.with)
	}
	return reason
}

// Resolved returns how the dead letters of the subscription were resolved, oldest
// first: what was replayed or discarded, when, by whom and why.
func (c *Client) Resolved(ctx context.Context, topic, group string) ([]Resolution, error) {
	if _, err := c.deadLetterReader(); err != nil {
		return nil, err
	}
	dlq := c.deadLetterTopicOf(topic, group)
	if _, _, err := c.pendingLetters(ctx, topic, group); err != nil {
		return nil, err // an unknown subscription
	}
	records, err := c.readTopic(ctx, ResolutionTopicName(dlq))
	if err != nil && !errors.Is(err, transport.ErrUnknownTopic) { // nothing resolved yet
		return nil, err
	}
	var out []Resolution
	for _, m := range records {
		if m.Metadata.Get(metadata.ResolvedTopic) == topic && m.Metadata.Get(metadata.ResolvedGroup) == group {
			out = append(out, resolutionOf(m))
		}
	}
	slices.SortStableFunc(out, func(a, b Resolution) int { return a.At.Compare(b.At) })
	return out, nil
}

// Replay sends the selected dead letters of the subscription (topic, group) back to
// that subscription's group only, through its replay topic "<topic>.<group>.replay":
// other groups of the topic do not see them. A replayed message keeps its id,
// payload (unless WithPayload), metadata and correlation id, starts again at attempt
// 1 under the subscription's Delivery, and is dead-lettered again if it fails again.
// Each replay is recorded in the resolution topic (ResolutionTopicName), with Note's
// who and why, so the letter leaves DeadLetters' list. It returns how many were
// replayed. A replay interrupted by an error may leave some replayed and still listed;
// replaying them again delivers them twice, which at-least-once allows.
func (c *Client) Replay(ctx context.Context, topic, group string, sel ReplaySelector) (int, error) {
	return c.resolve(ctx, topic, group, sel, true)
}

// Discard resolves the selected dead letters of the subscription without replaying
// them: a permanent failure nobody will fix, a duplicate. Each is recorded in the
// resolution topic with Note's who and why, and leaves DeadLetters' list; the letter
// itself stays in the dead-letter topic, for the record. It returns how many were
// discarded.
func (c *Client) Discard(ctx context.Context, topic, group string, sel ReplaySelector) (int, error) {
	return c.resolve(ctx, topic, group, sel, false)
}

func (c *Client) resolve(ctx context.Context, topic, group string, sel ReplaySelector, replay bool) (int, error) {
	letters, dlq, err := c.pendingLetters(ctx, topic, group)
	if err != nil {
		return 0, err
	}
	chosen, err := selected(letters, sel)
	if err != nil {
		return 0, fmt.Errorf("pubsub: %w: %s %q in group %q: %w", ErrInvalidOption, verb(replay), topic, group, err)
	}
	if sel.payload != nil {
		if !replay {
			return 0, fmt.Errorf("pubsub: %w: WithPayload is for Replay, not Discard", ErrInvalidOption)
		}
		if err := c.checkPayload(topic, group, chosen[0], sel.payload); err != nil {
			return 0, err
		}
	}
	for i, dead := range chosen {
		if replay {
			m := replayOf(ctx, dead, sel.payload)
			if err := c.tr.Publish(ReplayTopicName(topic, group), m); err != nil {
				return i, fmt.Errorf("pubsub: replaying %s: %w", dead.ID, err)
			}
		}
		if err := c.tr.Publish(ResolutionTopicName(dlq), resolutionRecord(ctx, topic, group, dead, sel, replay)); err != nil {
			return i, fmt.Errorf("pubsub: recording that %s was %sed: %w", dead.ID, verb(replay), err)
		}
		kind := EventDiscarded
		if replay {
			kind = EventReplayed
		}
		c.obs.report(ctx, Event{Kind: kind, Topic: topic, Group: group, MessageID: dead.ID, CorrelationID: dead.CorrelationID,
			Attempt: 1, Message: dead.message()})
		if sel.progress != nil {
			sel.progress(i+1, len(chosen))
		}
	}
	return len(chosen), nil
}

func jsonValid(b []byte) bool { return json.Valid(b) }

func verb(replay bool) string {
	if replay {
		return "replay"
	}
	return "discard"
}

// selected applies sel to the pending letters.
func selected(letters []DeadLetter, sel ReplaySelector) ([]DeadLetter, error) {
	switch {
	case sel.payload != nil && len(sel.ids) != 1:
		return nil, errors.New("WithPayload needs exactly one letter, chosen with ReplayIDs")
	case sel.all:
		return filtered(letters, sel.filters), nil
	case sel.ids != nil:
		want := map[string]bool{}
		for _, id := range sel.ids {
			want[id] = true
		}
		var chosen []DeadLetter
		for _, l := range letters {
			if want[l.ID] {
				chosen = append(chosen, l)
				delete(want, l.ID)
			}
		}
		if len(want) > 0 {
			return nil, fmt.Errorf("no pending dead letter has the id %v", slices.Sorted(maps.Keys(want)))
		}
		return chosen, nil
	case sel.first > 0:
		return letters[:min(sel.first, len(letters))], nil
	default:
		return nil, errors.New("choose letters with ReplayAll, ReplayIDs, ReplayFirst or ReplayMatching")
	}
}

func filtered(letters []DeadLetter, f []DeadLetterFilter) []DeadLetter {
	if len(f) == 0 {
		return letters
	}
	out := letters[:0:0]
next:
	for _, l := range letters {
		for _, keep := range f {
			if keep != nil && !keep(&l) {
				continue next
			}
		}
		out = append(out, l)
	}
	return out
}

// checkPayload refuses an edited payload that the subscription could not decode.
func (c *Client) checkPayload(topic, group string, dead DeadLetter, payload []byte) error {
	c.mu.Lock()
	s, ok := c.subs[topic+"/"+group]
	c.mu.Unlock()
	var err error
	switch ct := metadata.MediaType(metadata.ContentTypeOf(dead.Metadata)); {
	case ok && s.check != nil:
		err = s.check(payload)
	case strings.HasPrefix(ct, "application/json") && !jsonValid(payload):
		err = errors.New("it is not valid JSON")
	}
	if err != nil {
		return fmt.Errorf("pubsub: %w: the edited payload for %s: %w", ErrInvalidOption, dead.ID, err)
	}
	return nil
}

// pendingLetters returns the pending dead letters of a subscription, oldest first, and the
// dead-letter topic they were read from.
func (c *Client) pendingLetters(ctx context.Context, topic, group string) ([]DeadLetter, string, error) {
	if err := validName("topic", topic); err != nil {
		return nil, "", err
	}
	if err := validName("group", group); err != nil {
		return nil, "", err
	}
	dlq := c.deadLetterTopicOf(topic, group)
	msgs, err := c.readTopic(ctx, dlq)
	if errors.Is(err, transport.ErrUnknownTopic) {
		if !c.subscribed(topic, group) {
			return nil, "", fmt.Errorf("pubsub: %w: %q in group %q: this client has no such subscription and its dead-letter topic %q does not exist",
				ErrUnknownSubscription, topic, group, dlq)
		}
		return nil, dlq, nil
	}
	if err != nil {
		return nil, "", err
	}
	resolvedUpTo, err := c.resolvedUpTo(ctx, topic, group, dlq)
	if err != nil {
		return nil, "", err
	}
	latest := map[string]DeadLetter{} // a message dead-lettered more than once: its newest letter
	for _, m := range msgs {
		if m.Metadata.Get(metadata.DeadLetterGroup) != group || m.Metadata.Get(metadata.DeadLetterTopic) != topic {
			continue // a dead-letter topic shared through Delivery.DeadLetterTopic
		}
		l := deadLetterOf(m)
		if upTo, ok := resolvedUpTo[l.ID]; ok && !l.LastFailure.After(upTo) {
			continue
		}
		if prev, ok := latest[l.ID]; !ok || !l.LastFailure.Before(prev.LastFailure) {
			latest[l.ID] = l
		}
	}
	letters := slices.Collect(maps.Values(latest))
	slices.SortFunc(letters, olderFirst)
	return letters, dlq, nil
}

// olderFirst orders letters by their last failure, then by id: the order of
// DeadLetters and of the pages of DeadLetterPage.
func olderFirst(a, b DeadLetter) int {
	if c := a.LastFailure.Compare(b.LastFailure); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// resolvedUpTo reads the resolution topic of dlq: for each message id of the
// subscription (topic, group), the newest failure that was resolved.
func (c *Client) resolvedUpTo(ctx context.Context, topic, group, dlq string) (map[string]time.Time, error) {
	records, err := c.readTopic(ctx, ResolutionTopicName(dlq))
	if err != nil && !errors.Is(err, transport.ErrUnknownTopic) {
		return nil, err
	}
	upTo := map[string]time.Time{}
	for _, m := range records {
		if m.Metadata.Get(metadata.ResolvedTopic) != topic || m.Metadata.Get(metadata.ResolvedGroup) != group {
			continue
		}
		r := resolutionOf(m)
		if at, ok := upTo[r.ID]; !ok || r.Failure.After(at) {
			upTo[r.ID] = r.Failure
		}
	}
	return upTo, nil
}

func (c *Client) deadLetterReader() (transport.Reader, error) {
	r, ok := c.tr.(transport.Reader)
	if !ok {
		return nil, fmt.Errorf("pubsub: %w: this transport cannot list dead letters (it does not implement transport.Reader)", ErrInvalidOption)
	}
	return r, nil
}

func (c *Client) readTopic(ctx context.Context, topic string) ([]*message.Message, error) {
	r, err := c.deadLetterReader()
	if err != nil {
		return nil, err
	}
	msgs, err := r.ReadAll(ctx, topic)
	if err != nil && !errors.Is(err, transport.ErrUnknownTopic) {
		return nil, fmt.Errorf("pubsub: reading %q: %w", topic, err)
	}
	return msgs, err
}

// subscribed reports whether this client subscribed to (topic, group).
func (c *Client) subscribed(topic, group string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.subs[topic+"/"+group]
	return ok
}

// deadLetterTopicOf is the dead-letter topic of a subscription of this client, or the
// default name.
func (c *Client) deadLetterTopicOf(topic, group string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.subs[topic+"/"+group]; ok && s.deadLetterTopic != "" {
		return s.deadLetterTopic
	}
	return DeadLetterTopicName(topic, group)
}

// replayOf is the message a dead letter is replayed as: the original id, payload (or
// the edited one) and metadata, without the dead-letter and retry keys, at attempt 1,
// pointing at the original record.
func replayOf(ctx context.Context, dead DeadLetter, edited []byte) *message.Message {
	payload := dead.Payload
	if edited != nil {
		payload = edited
	}
	m := message.NewMessage(dead.ID, payload)
	for k, v := range dead.Metadata {
		if strings.HasPrefix(k, metadata.Prefix+"dlq_") {
			continue
		}
		m.Metadata[k] = v
	}
	metadata.DropBookkeeping(m.Metadata)
	if dead.HasPosition {
		m.Metadata[metadata.OriginPartition] = strconv.Itoa(int(dead.Partition))
		m.Metadata[metadata.OriginOffset] = strconv.FormatInt(dead.Offset, 10)
	}
	m.Metadata[metadata.Replayed] = "true"
	if edited != nil {
		m.Metadata[metadata.ReplayEdited] = "true"
	}
	m.SetContext(ctx)
	return m
}

// resolutionRecord is the record that says dead was replayed or discarded.
func resolutionRecord(ctx context.Context, topic, group string, dead DeadLetter, sel ReplaySelector, replay bool) *message.Message {
	m := message.NewMessage(newID(), nil)
	kind := "discarded"
	if replay {
		kind = "replayed"
	}
	m.Metadata[metadata.Resolution] = kind
	m.Metadata[metadata.ResolvedID] = dead.ID
	m.Metadata[metadata.ResolvedFailure] = metadata.FormatTime(dead.LastFailure)
	m.Metadata[metadata.ResolvedTopic] = topic
	m.Metadata[metadata.ResolvedGroup] = group
	m.Metadata[metadata.ResolvedAt] = metadata.FormatTime(time.Now())
	m.Metadata[metadata.ResolvedBy] = metadata.ValidUTF8(sel.by)
	note := sel.note
	if sel.payload != nil {
		note = strings.TrimSpace(note + " (replayed with an edited payload)")
	}
	m.Metadata[metadata.ResolvedNote] = metadata.ValidUTF8(note)
	if key := dead.Key; key != "" {
		m.Metadata[metadata.Key] = key // the resolution of a key's letter sits with the key's letters
	}
	m.SetContext(ctx)
	return m
}

func resolutionOf(m *message.Message) Resolution {
	md := m.Metadata
	r := Resolution{ID: md.Get(metadata.ResolvedID), Replayed: md.Get(metadata.Resolution) == "replayed",
		By: md.Get(metadata.ResolvedBy), Note: md.Get(metadata.ResolvedNote)}
	r.At, _ = metadata.ParseTime(md.Get(metadata.ResolvedAt))
	r.Failure, _ = metadata.ParseTime(md.Get(metadata.ResolvedFailure))
	return r
}

func deadLetterOf(m *message.Message) DeadLetter {
	md := m.Metadata
	d := DeadLetter{
		ID:            m.UUID,
		CorrelationID: md.Get(metadata.CorrelationID),
		Key:           md.Get(metadata.Key),
		Topic:         md.Get(metadata.DeadLetterTopic),
		Group:         md.Get(metadata.DeadLetterGroup),
		Reason:        md.Get(metadata.DeadLetterReason),
		Permanent:     md.Get(metadata.DeadLetterPermanent) == "true",
		Payload:       m.Payload,
		Metadata:      md, // the reader's fresh copy: nobody else holds it
	}
	if p, ok := transport.PositionFrom(m.Context()); ok {
		d.LetterPartition, d.LetterOffset, d.HasLetterPosition = p.Partition, p.Offset, true
	}
	// The letter may come from another client or a hand-made replay: malformed
	// numbers read as unknown (0), never as a wrong position.
	if n, err := strconv.Atoi(md.Get(metadata.DeadLetterAttempts)); err == nil && n > 0 {
		d.Attempts = n
	}
	d.FirstFailure, _ = metadata.ParseTime(md.Get(metadata.DeadLetterFirstFailure))
	d.LastFailure, _ = metadata.ParseTime(md.Get(metadata.DeadLetterLastFailure))
	if o := md.Get(metadata.DeadLetterOffset); o != "" {
		p, perr := strconv.ParseInt(md.Get(metadata.DeadLetterPartition), 10, 32)
		off, oerr := strconv.ParseInt(o, 10, 64)
		if perr == nil && oerr == nil && p >= 0 && off >= 0 {
			d.Partition, d.Offset, d.HasPosition = int32(p), off, true
		}
	}
	return d
}

// message is the letter as a Watermill message, for events and hooks.
func (d DeadLetter) message() *message.Message {
	m := message.NewMessage(d.ID, d.Payload)
	m.Metadata = maps.Clone(message.Metadata(d.Metadata))
	return m
}
