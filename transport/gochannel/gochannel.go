// Package gochannel opens Watermill's own in-process pub/sub, gochannel, as a
// transport (gochannel://), through watermilladapter.New, with the capabilities it
// really has. It is the plug-in path any Watermill pub/sub takes.
//
// gochannel gives every subscriber every message, so it has no consumer groups: the
// transport refuses a second member of a group on a topic while the first runs (both
// would get each message). It runs handlers concurrently and out of order, so the
// client refuses Ordered delivery on it (subscribe with Delivery{Ordering: Unordered}),
// and it keeps nothing for a subscriber that comes later unless persistent=true (then
// it keeps everything, without bound). A nacked message comes back after
// nack_delay (gochannel alone redelivers at once, in a busy loop). For tests that need
// Kafka-like behaviour use memory:// instead.
package gochannel

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	wgochannel "github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/internal/urlquery"
	"github.com/pubsubkit/pubsub/transport/watermilladapter"
)

// Scheme is the URL scheme of this transport: gochannel://
const Scheme = "gochannel"

// Open is the transport.OpenFunc for gochannel:// URLs. Parameters: persistent
// (default false: messages published before a subscriber are dropped), buffer (the
// output channel buffer of each subscriber, default 0) and nack_delay (default 100ms).
func Open(_ context.Context, u *url.URL, o transport.OpenOptions) (transport.Transport, error) {
	if u.Host != "" || (u.Path != "" && u.Path != "/") || u.User != nil || u.Opaque != "" || u.Fragment != "" {
		return nil, fmt.Errorf("gochannel: %w: a gochannel URL takes no host, user, path or fragment, only parameters (gochannel://?persistent=true)", transport.ErrInvalidOption)
	}
	q := urlquery.New(u)
	persistent := q.Bool("persistent", false)
	buffer := q.Int("buffer", 0)
	nackDelay := q.Duration("nack_delay", 0)
	if err := q.Err(); err != nil {
		return nil, fmt.Errorf("gochannel: %w", err)
	}
	if buffer < 0 || nackDelay < 0 {
		return nil, fmt.Errorf("gochannel: %w: buffer %d and nack_delay %v must not be negative", transport.ErrInvalidOption, buffer, nackDelay)
	}
	gc := wgochannel.NewGoChannel(wgochannel.Config{OutputChannelBuffer: int64(buffer), Persistent: persistent},
		watermill.NewSlogLoggerWithLevelMapping(o.Logger, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug}))
	caps := transport.Capabilities{MessagingSystem: "gochannel", Retains: persistent}
	return watermilladapter.New(gc, func(string) (message.Subscriber, error) { return gc, nil }, caps, nackDelay), nil
}
