package kafka

import (
	"context"
	"fmt"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pubsubkit/pubsub/transport"
)

// ReadAll returns the records topic holds now, partition by partition, each oldest
// first, read by a consumer of its own: no group, no committed offset. It lists every
// partition's start and end first and then fetches all partitions at once, stopping
// at each end it listed: records published meanwhile are not read, and nothing waits
// for more. Under read_committed (Config.Isolation) the end is the last stable offset,
// so a transaction still open is not waited for and aborted records are skipped. A
// topic that does not exist is an error wrapping transport.ErrUnknownTopic.
func (t *Transport) ReadAll(ctx context.Context, topic string) ([]*message.Message, error) {
	return whileOpenDo(t, ctx, func(ctx context.Context) ([]*message.Message, error) { return t.readAll(ctx, topic) })
}

// readAll is ReadAll's work, on a context that ends when the transport closes.
func (t *Transport) readAll(ctx context.Context, topic string) ([]*message.Message, error) {
	var starts, ends map[int32]int64
	var startErr, endErr error
	var wg sync.WaitGroup
	wg.Go(func() { starts, startErr = t.startOffsets(ctx, topic) })
	ends, endErr = t.endOffsets(ctx, topic)
	wg.Wait()
	if endErr != nil {
		return nil, endErr
	}
	if startErr != nil {
		return nil, startErr
	}
	from := map[int32]kgo.Offset{}
	last := map[int32]int64{} // the offset of each partition's last record to read
	total := 0
	for p, end := range ends {
		if start := starts[p]; end > start {
			from[p] = kgo.NewOffset().At(start)
			last[p] = end - 1
			total += int(end - start)
		}
	}
	if len(from) == 0 {
		return nil, nil
	}
	// Control records (transaction markers) are kept, and skipped here, so that a
	// partition ending in one is seen to end.
	cl, err := t.newClient(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}),
		kgo.FetchIsolationLevel(t.cfg.isolation()), kgo.KeepControlRecords(),
		kgo.FetchMaxPartitionBytes(int32(t.cfg.FetchBytes)))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	msgs := make([]*message.Message, 0, total)
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
				msg := toMessage(r, false)
				msg.SetContext(transport.WithPosition(ctx, transport.Position{Partition: r.Partition, Offset: r.Offset, Time: r.Timestamp}))
				msgs = append(msgs, msg)
			}
			if r.Offset == end {
				delete(last, r.Partition)
				cl.PauseFetchPartitions(map[string][]int32{topic: {r.Partition}}) // read to its end: fetch no more of it
			}
		})
	}
	return msgs, nil
}
