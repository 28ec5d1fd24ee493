package kafka

import (
	"context"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pubsubkit/pubsub/transport"
)

var _ transport.RecordReader = (*Transport)(nil)

// ReadAt returns the record at offset of partition of topic, read by a consumer of its
// own (no group, no committed offset) that fetches from that offset and stops at the
// first record; see transport.RecordReader. An offset outside what the partition holds
// now (under read_committed: beyond the last stable offset), or one that holds no
// message (a transaction marker, an aborted or compacted record), is an error wrapping
// transport.ErrNoRecord.
func (t *Transport) ReadAt(ctx context.Context, topic string, partition int32, offset int64) (*message.Message, error) {
	return whileOpenDo(t, ctx, func(ctx context.Context) (*message.Message, error) { return t.readAt(ctx, topic, partition, offset) })
}

// readAt is ReadAt's work, on a context that ends when the transport closes.
func (t *Transport) readAt(ctx context.Context, topic string, partition int32, offset int64) (*message.Message, error) {
	starts, err := t.startOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	ends, err := t.endOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	end, ok := ends[partition]
	if !ok || offset < starts[partition] || offset >= end {
		return nil, fmt.Errorf("kafka: %q partition %d offset %d: %w", topic, partition, offset, transport.ErrNoRecord)
	}
	cl, err := t.newClient(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(offset)}}),
		kgo.FetchIsolationLevel(t.cfg.isolation()), kgo.KeepControlRecords(), kgo.FetchMaxPartitionBytes(int32(t.cfg.FetchBytes)))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	for {
		fetches := cl.PollRecords(ctx, 1)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("kafka: reading %q partition %d offset %d: %w", topic, partition, offset, err)
		}
		var ferr error
		fetches.EachError(func(_ string, p int32, err error) {
			ferr = fmt.Errorf("kafka: reading %q partition %d offset %d: %w", topic, p, offset, err)
		})
		if ferr != nil {
			return nil, ferr
		}
		for _, r := range fetches.Records() {
			switch {
			case r.Offset < offset:
				continue // a batch starts before the offset asked for
			case r.Offset > offset || r.Attrs.IsControl():
				return nil, fmt.Errorf("kafka: %q partition %d offset %d: %w", topic, partition, offset, transport.ErrNoRecord)
			}
			msg := toMessage(r, false)
			msg.SetContext(transport.WithPosition(ctx, transport.Position{Partition: r.Partition, Offset: r.Offset, Time: r.Timestamp}))
			return msg, nil
		}
	}
}
