package pubsub

import (
	"context"
	"fmt"
	"maps"
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
	Payload     []byte            // byte for byte as published
	Metadata    map[string]string // the original metadata and the dead-letter keys
}

// ReplaySelector chooses which dead letters Replay sends back.
type ReplaySelector struct {
	all   bool
	ids   []string
	first int
}

// ReplayAll selects every dead letter not yet replayed.
func ReplayAll() ReplaySelector { return ReplaySelector{all: true} }

// ReplayIDs selects the dead letters with these message ids.
func ReplayIDs(ids ...string) ReplaySelector { return ReplaySelector{ids: ids} }

// ReplayFirst selects the n oldest dead letters not yet replayed.
func ReplayFirst(n int) ReplaySelector { return ReplaySelector{first: n} }

// replayMarker, in a dead-letter topic, says that the dead letter with this message
// id was replayed; DeadLetters leaves it out until it is dead-lettered again.
const replayMarker = metadata.Prefix + "replay_of"

// DeadLetters returns the dead letters of the subscription (topic, group) that were
// not replayed since they were dead-lettered, oldest first. It reads the
// subscription's dead-letter topic (Delivery.DeadLetterTopic when this client
// subscribed with one, else "<topic>.<group>.dlq") without consuming it, so the
// transport must implement transport.Reader (memory and Kafka do).
func (c *Client) DeadLetters(ctx context.Context, topic, group string) ([]DeadLetter, error) {
	msgs, _, err := c.readDeadLetters(ctx, topic, group)
	if err != nil {
		return nil, err
	}
	letters := make([]DeadLetter, len(msgs))
	for i, m := range msgs {
		letters[i] = deadLetterOf(m)
	}
	return letters, nil
}

// readDeadLetters returns the pending dead-letter messages of a subscription and the
// dead-letter topic they were read from.
func (c *Client) readDeadLetters(ctx context.Context, topic, group string) ([]*message.Message, string, error) {
	r, ok := c.tr.(transport.Reader)
	if !ok {
		return nil, "", fmt.Errorf("pubsub: %w: this transport cannot list dead letters (it does not implement transport.Reader)", ErrInvalidOption)
	}
	dlq := c.deadLetterTopicOf(topic, group)
	msgs, err := r.ReadAll(ctx, dlq)
	if err != nil {
		return nil, "", fmt.Errorf("pubsub: reading dead letters of %q in group %q from %q: %w", topic, group, dlq, err)
	}
	// Every replay leaves a marker: a letter is pending while its id has more letters
	// than markers. Counting, rather than following the order, keeps this right when
	// a letter and its marker sit in different partitions.
	letters, markers := map[string]int{}, map[string]int{}
	last := map[string]*message.Message{}
	for _, m := range msgs {
		if id := m.Metadata.Get(replayMarker); id != "" {
			markers[id]++
			continue
		}
		if m.Metadata.Get(metadata.DeadLetterGroup) != group || m.Metadata.Get(metadata.DeadLetterTopic) != topic {
			continue // a dead-letter topic shared through Delivery.DeadLetterTopic
		}
		letters[m.UUID]++
		if prev, ok := last[m.UUID]; !ok || !failedAt(m).Before(failedAt(prev)) {
			last[m.UUID] = m
		}
	}
	var out []*message.Message
	for id, m := range last {
		if letters[id] > markers[id] {
			out = append(out, m)
		}
	}
	slices.SortStableFunc(out, func(a, b *message.Message) int { return failedAt(a).Compare(failedAt(b)) })
	return out, dlq, nil
}

// failedAt is when a dead letter was dead-lettered.
func failedAt(m *message.Message) time.Time {
	t, _ := metadata.ParseTime(m.Metadata.Get(metadata.DeadLetterLastFailure))
	return t
}

// deadLetterTopicOf is the dead-letter topic of a subscription of this client, or the
// default name.
func (c *Client) deadLetterTopicOf(topic, group string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.subs[topic+"/"+group]; ok && s.delivery != nil {
		return s.deadLetterTopic
	}
	return DeadLetterTopicName(topic, group)
}

// Replay sends the selected dead letters of the subscription (topic, group) back to
// that subscription's group only, through its replay topic "<topic>.<group>.replay":
// other groups of the topic do not see them. A replayed message keeps its id, payload,
// metadata and correlation id, starts again at attempt 1 under the subscription's
// Delivery, and is dead-lettered again if it fails again. It returns how many were
// replayed. A replay interrupted by an error may leave some replayed and still listed;
// replaying them again delivers them twice, which at-least-once allows.
func (c *Client) Replay(ctx context.Context, topic, group string, sel ReplaySelector) (int, error) {
	letters, dlq, err := c.readDeadLetters(ctx, topic, group)
	if err != nil {
		return 0, err
	}
	chosen := letters[:0:0]
	switch {
	case sel.all:
		chosen = letters
	case sel.ids != nil:
		want := map[string]bool{}
		for _, id := range sel.ids {
			want[id] = true
		}
		for _, l := range letters {
			if want[l.UUID] {
				chosen = append(chosen, l)
				delete(want, l.UUID)
			}
		}
		if len(want) > 0 {
			return 0, fmt.Errorf("pubsub: %w: no pending dead letter of %q in group %q has the id %v",
				ErrInvalidOption, topic, group, slices.Sorted(maps.Keys(want)))
		}
	case sel.first > 0:
		chosen = letters[:min(sel.first, len(letters))]
	default:
		return 0, fmt.Errorf("pubsub: %w: Replay needs ReplayAll, ReplayIDs or ReplayFirst", ErrInvalidOption)
	}
	for i, dead := range chosen {
		if err := c.tr.Publish(ReplayTopicName(topic, group), replayOf(ctx, dead)); err != nil {
			return i, fmt.Errorf("pubsub: replaying %s: %w", dead.UUID, err)
		}
		marker := message.NewMessage(dead.UUID+"/replayed", nil)
		marker.Metadata.Set(replayMarker, dead.UUID)
		marker.SetContext(ctx)
		if err := c.tr.Publish(dlq, marker); err != nil {
			return i + 1, fmt.Errorf("pubsub: marking %s replayed: %w", dead.UUID, err)
		}
		c.obs.report(ctx, Event{Kind: EventReplayed, Topic: topic, Group: group, Attempt: 1, Message: dead})
	}
	return len(chosen), nil
}

// replayOf is the message a dead letter is replayed as: the original id, payload and
// metadata, without the dead-letter and retry keys, at attempt 1, pointing at the
// original record.
func replayOf(ctx context.Context, dead *message.Message) *message.Message {
	m := message.NewMessage(dead.UUID, dead.Payload)
	for k, v := range dead.Metadata {
		if strings.HasPrefix(k, metadata.Prefix+"dlq_") {
			continue
		}
		switch k {
		case metadata.Attempt, metadata.FirstFailure, metadata.RetryDue:
			continue
		}
		m.Metadata.Set(k, v)
	}
	if o := dead.Metadata.Get(metadata.DeadLetterOffset); o != "" {
		m.Metadata.Set(metadata.OriginPartition, dead.Metadata.Get(metadata.DeadLetterPartition))
		m.Metadata.Set(metadata.OriginOffset, o)
	}
	m.Metadata.Set(metadata.Replayed, "true")
	m.SetContext(ctx)
	return m
}

func deadLetterOf(m *message.Message) DeadLetter {
	md := m.Metadata
	d := DeadLetter{
		ID:            m.UUID,
		CorrelationID: md.Get(metadata.CorrelationID),
		Topic:         md.Get(metadata.DeadLetterTopic),
		Group:         md.Get(metadata.DeadLetterGroup),
		Reason:        md.Get(metadata.DeadLetterReason),
		Permanent:     md.Get(metadata.DeadLetterPermanent) == "true",
		Payload:       m.Payload,
		Metadata:      maps.Clone(map[string]string(md)),
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
