package memory

import (
	"context"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/transport"
)

var _ transport.RecordReader = (*Transport)(nil)

// ReadAt returns the message at offset of topicName's one partition (0), without
// touching any group's position; see transport.RecordReader.
func (t *Transport) ReadAt(ctx context.Context, topicName string, partition int32, offset int64) (*message.Message, error) {
	tp, err := t.existing(topicName)
	if err != nil {
		return nil, err
	}
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if partition != 0 || offset < tp.first || offset >= tp.end() {
		return nil, fmt.Errorf("memory: topic %q partition %d offset %d: %w", topicName, partition, offset, transport.ErrNoRecord)
	}
	return tp.log[offset-tp.first].read(ctx), nil
}
