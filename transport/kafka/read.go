package kafka

import (
	"context"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pubsubkit/pubsub/transport"
)

// ReadAll returns the records topic holds now, partition by partition, oldest first,
// read by a consumer of its own: no group, no committed offset. It stops at each
// partition's end as it was when ReadAll began. A topic that does not exist holds no
// record.
func (t *Transport) ReadAll(ctx context.Context, topic string) ([]*message.Message, error) {
	if err := t.checkOpen(); err != nil {
		return nil, err
	}
	starts, err := t.admin.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("kafka: reading %q: %w", topic, err)
	}
	ends, err := t.admin.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("kafka: reading %q: %w", topic, err)
	}
	from := map[int32]kgo.Offset{}
	last := map[int32]int64{} // the offset of each partition's last record
	for p, end := range ends[topic] {
		if isUnknownTopic(end.Err) {
			return nil, nil
		}
		if end.Err != nil {
			return nil, fmt.Errorf("kafka: reading %q partition %d: %w", topic, p, end.Err)
		}
		start := starts[topic][p]
		if start.Err != nil {
			return nil, fmt.Errorf("kafka: reading %q partition %d: %w", topic, p, start.Err)
		}
		if end.Offset > start.Offset {
			from[p] = kgo.NewOffset().At(start.Offset)
			last[p] = end.Offset - 1
		}
	}
	if len(from) == 0 {
		return nil, nil
	}
	// Control records (transaction markers) are kept, and skipped here, so that a
	// partition ending in one is seen to end.
	cl, err := t.newClient(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(),
		kgo.FetchMaxPartitionBytes(int32(t.cfg.FetchBytes)))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var msgs []*message.Message
	for len(last) > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("kafka: reading %q: %w", topic, err)
		}
		var ferr error
		fetches.EachError(func(_ string, p int32, err error) {
			ferr = fmt.Errorf("kafka: reading %q partition %d: %w", topic, p, err)
		})
		if ferr != nil {
			return nil, ferr
		}
		fetches.EachRecord(func(r *kgo.Record) {
			end, reading := last[r.Partition]
			if !reading || r.Offset > end {
				return
			}
			if !r.Attrs.IsControl() {
				msg := toMessage(r)
				msg.SetContext(transport.WithPosition(ctx, transport.Position{Partition: r.Partition, Offset: r.Offset, Time: r.Timestamp}))
				msgs = append(msgs, msg)
			}
			if r.Offset == end {
				delete(last, r.Partition)
			}
		})
	}
	return msgs, nil
}
