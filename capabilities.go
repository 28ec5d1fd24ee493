package pubsub

import (
	"fmt"

	"github.com/pubsubkit/pubsub/transport"
)

// checkCapabilities refuses a subscription that relies on what the transport does not
// guarantee (transport.Capabilities), when it is made rather than by misbehaving later:
//
//   - Delivery.Concurrency above 1 needs Concurrency;
//   - Ordered delivery (the default) needs Ordered: an in-place retry is only worth its
//     wait when the messages behind it come after it;
//   - a batch of more than one message needs Concurrency (checkBatch).
//
// A group on a transport without ConsumerGroups is refused by the transport itself when
// a second member of it subscribes (watermilladapter), since one member alone gets what
// a group would give it. Retention, persistence and partition keys change what survives
// a restart or runs in parallel, not what one subscription is promised: Client.Capabilities
// reports them.
func (s *subscription) checkCapabilities(caps transport.Capabilities) error {
	if s.delivery.Concurrency > 1 && !caps.Concurrency {
		return fmt.Errorf("pubsub: %w: Subscribe(%q, %q): Delivery.Concurrency %d, but this transport (%s) hands out one message at a time per subscription (its Capabilities lack Concurrency)",
			ErrInvalidOption, s.topic, s.group, s.delivery.Concurrency, caps.MessagingSystem)
	}
	if s.delivery.Ordering == Ordered && !caps.Ordered {
		return fmt.Errorf("pubsub: %w: Subscribe(%q, %q): Ordered delivery (the default), but this transport (%s) does not keep messages in order (its Capabilities lack Ordered); subscribe WithDelivery(Delivery{Ordering: Unordered, ...}), set it for the client WithDefaultDelivery, or use a transport that keeps order (memory://, kafka://)",
			ErrInvalidOption, s.topic, s.group, caps.MessagingSystem)
	}
	return s.checkBatch(caps)
}
