package kafka

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Topics returns the names of the cluster's topics that start with prefix, sorted,
// without Kafka's internal topics (those the brokers mark internal and every name
// starting with "__", such as __consumer_offsets). It asks a broker each time rather
// than franz-go's metadata cache, so a topic created a moment ago is listed.
func (t *Transport) Topics(ctx context.Context, prefix string) ([]string, error) {
	if err := t.checkOpen(); err != nil {
		return nil, err
	}
	ctx, done := t.whileOpen(ctx)
	defer done()
	req := kmsg.NewPtrMetadataRequest() // Topics nil: every topic
	resp, err := req.RequestWith(ctx, t.producer)
	if err != nil {
		return nil, t.orClosed(fmt.Errorf("kafka: listing topics: %w", err))
	}
	var names []string
	for _, mt := range resp.Topics {
		if mt.Topic == nil || mt.IsInternal || strings.HasPrefix(*mt.Topic, "__") || !strings.HasPrefix(*mt.Topic, prefix) {
			continue
		}
		if err := kerr.ErrorForCode(mt.ErrorCode); err != nil {
			continue // being deleted, or not authorized to describe: not one we can use
		}
		names = append(names, *mt.Topic)
	}
	slices.Sort(names)
	return names, nil
}
