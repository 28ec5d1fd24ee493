package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/pubsubkit/pubsub/transport"
)

// GroupLag returns, for each partition of topic in partition order, group's
// committed offset (Committed; -1 when the group never committed one there) and the
// partition's end (End): under read_committed, the default, the last stable offset
// (a transaction still open is not yet lag a consumer can work off), otherwise the
// high watermark. Only Partition, Committed and End are set. It reads the cluster, so
// any process may ask; a topic that does not exist is an error wrapping
// transport.ErrUnknownTopic.
func (t *Transport) GroupLag(ctx context.Context, topic, group string) ([]transport.PartitionStats, error) {
	return whileOpenDo(t, ctx, func(ctx context.Context) ([]transport.PartitionStats, error) { return t.groupLag(ctx, topic, group) })
}

// groupLag is GroupLag's work, on a context that ends when the transport closes.
func (t *Transport) groupLag(ctx context.Context, topic, group string) ([]transport.PartitionStats, error) {
	ends, err := t.endOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	committed, err := t.admin.FetchOffsetsForTopics(ctx, group, topic)
	if errors.Is(err, kerr.GroupIDNotFound) {
		committed, err = nil, nil // a group that never committed (Kafka 4 and kfake say so)
	}
	if err != nil {
		return nil, fmt.Errorf("kafka: committed offsets of group %q on %q: %w", group, topic, err)
	}
	stats := make([]transport.PartitionStats, 0, len(ends))
	for p, end := range ends {
		s := transport.PartitionStats{Partition: p, Committed: -1, End: end}
		if o, ok := committed.Lookup(topic, p); ok && o.Err == nil && o.At >= 0 {
			s.Committed = o.At
		}
		stats = append(stats, s)
	}
	slices.SortFunc(stats, func(a, b transport.PartitionStats) int { return int(a.Partition - b.Partition) })
	return stats, nil
}

// endOffsets returns the end offset of each partition of topic: the last stable
// offset under read_committed, the high watermark under read_uncommitted; an error
// wrapping transport.ErrUnknownTopic when the topic does not exist.
func (t *Transport) endOffsets(ctx context.Context, topic string) (map[int32]int64, error) {
	list := t.admin.ListEndOffsets
	if t.cfg.Isolation == ReadCommitted {
		list = t.admin.ListCommittedOffsets
	}
	listed, err := list(ctx, topic)
	return offsetsOf(topic, "end", listed, err)
}

// startOffsets returns the oldest offset each partition of topic holds.
func (t *Transport) startOffsets(ctx context.Context, topic string) (map[int32]int64, error) {
	listed, err := t.admin.ListStartOffsets(ctx, topic)
	return offsetsOf(topic, "start", listed, err)
}

// offsetsOf reads topic's offsets out of a kadm listing (what names it in errors): a
// missing topic is an error wrapping transport.ErrUnknownTopic.
func offsetsOf(topic, what string, listed kadm.ListedOffsets, err error) (map[int32]int64, error) {
	if err != nil {
		return nil, fmt.Errorf("kafka: listing the %s offsets of %q: %w", what, topic, err)
	}
	offsets := make(map[int32]int64, len(listed[topic]))
	for p, o := range listed[topic] {
		switch {
		case isUnknownTopic(o.Err):
			return nil, fmt.Errorf("kafka: topic %q: %w", topic, transport.ErrUnknownTopic)
		case o.Err != nil:
			return nil, fmt.Errorf("kafka: listing the %s offsets of %q, partition %d: %w", what, topic, p, o.Err)
		}
		offsets[p] = o.Offset
	}
	if len(offsets) == 0 {
		return nil, fmt.Errorf("kafka: topic %q: %w", topic, transport.ErrUnknownTopic)
	}
	return offsets, nil
}
