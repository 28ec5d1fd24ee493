package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// groupRelog is how often a member that keeps failing to join its group logs it again
// at error level; the failures in between are logged at debug level.
const groupRelog = time.Minute

// groupState is what a subscription knows of its membership: the error that ended
// its last group session or join, until it joins again.
type groupState struct {
	mu       sync.Mutex
	err      error
	failures int
	loggedAt time.Time
}

// groupFailed handles err if it is a group error (the join, sync or heartbeat failed
// for good: franz-go retries the join): it is kept for GroupError and logged at error
// level, the first time and then at most every groupRelog while it lasts. It reports
// whether err was a group error.
func (s *subscription) groupFailed(err error) bool {
	var ge *kgo.ErrGroupSession
	if !errors.As(err, &ge) {
		return false
	}
	if errors.Is(err, context.Canceled) || s.ctx.Err() != nil {
		return true
	}
	err = s.explainGroupError(ge.Err)
	g := &s.group
	g.mu.Lock()
	g.err = err
	g.failures++
	failures := g.failures
	loud := failures == 1 || time.Since(g.loggedAt) >= groupRelog
	if loud {
		g.loggedAt = time.Now()
	}
	g.mu.Unlock()
	log := s.t.cfg.Logger.Debug
	if loud {
		log = s.t.cfg.Logger.Error
	}
	log(err.Error(), "topic", s.topic, "group", s.opts.Group, "failures", failures)
	return true
}

// explainGroupError says what a group error means for this member, and for one that
// Kafka gives when the group's members share no balancer, what to set.
func (s *subscription) explainGroupError(err error) error {
	if errors.Is(err, kerr.InconsistentGroupProtocol) {
		return fmt.Errorf("kafka: this member cannot join group %q: the group's members use balancers (partition assignment strategies) of which this one lists none (balancer=%s), so it consumes nothing while they hold every partition; list one of theirs in balancer= (the default, %s, admits the default members of Java, librdkafka, sarama and watermill-kafka): %w",
			s.opts.Group, s.t.cfg.Balancer, DefaultBalancer, err)
	}
	return fmt.Errorf("kafka: this member is out of group %q and consumes nothing until it joins again (franz-go retries): %w", s.opts.Group, err)
}

// joined records that the member is in its group (partitions were assigned, maybe
// none), and logs it when it had failed to be.
func (s *subscription) joined() {
	g := &s.group
	g.mu.Lock()
	failures := g.failures
	g.err, g.failures, g.loggedAt = nil, 0, time.Time{}
	g.mu.Unlock()
	if failures > 0 {
		s.t.cfg.Logger.Info("kafka: member joined its group again", "topic", s.topic, "group", s.opts.Group, "failed_attempts", failures)
	}
}

// GroupError returns why this member is not in its consumer group now (the error of
// its last attempt to join or stay in it), or nil while it is in it, has not tried
// yet or consumes without a group; see transport.GroupMember.
func (s *subscription) GroupError() error {
	s.group.mu.Lock()
	defer s.group.mu.Unlock()
	return s.group.err
}
