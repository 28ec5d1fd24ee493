package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrLessDurable is returned, with StrictDurability, for a topic whose replication
// factor or min.insync.replicas is below the configured one.
var ErrLessDurable = errors.New("kafka: topic less durable than configured")

// topicCache remembers the topics already provisioned and checked, so the admin
// requests run once per topic and transport, not once per Publish.
type topicCache struct {
	t      *Transport
	topics sync.Map // name → *topicState
}

type topicState struct {
	done atomic.Bool
	mu   sync.Mutex // held while the topic is being provisioned
}

// ensure provisions and checks topic once. A failure is not remembered, so the next
// call tries again.
func (tc *topicCache) ensure(ctx context.Context, topic string) error {
	v, ok := tc.topics.Load(topic)
	if !ok {
		v, _ = tc.topics.LoadOrStore(topic, &topicState{})
	}
	st := v.(*topicState)
	if st.done.Load() { // every Publish after the first: no lock
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.done.Load() {
		return nil
	}
	if err := tc.t.provision(ctx, topic); err != nil {
		return err
	}
	st.done.Store(true)
	return nil
}

// forget makes the next ensure of topic provision it again: it was deleted.
func (tc *topicCache) forget(topic string) { tc.topics.Delete(topic) }

// provision creates topic when it is missing and provisioning is on, waits until
// every partition has a leader, and checks its durability.
func (t *Transport) provision(ctx context.Context, topic string) error {
	if ctx.Err() != nil {
		return fmt.Errorf("kafka: provisioning %q: %w", topic, ctx.Err())
	}
	ctx, cancel := context.WithTimeout(ctx, adminTimeout(t.cfg))
	defer cancel()
	detail, err := t.describe(ctx, topic)
	if err != nil {
		return err
	}
	if detail == nil {
		if t.cfg.DisableProvisioning {
			// The cluster may create it on first use (auto.create.topics.enable); if
			// not, the producer's error names the topic.
			t.cfg.Logger.Debug("kafka: topic does not exist and provisioning is off", "topic", topic)
			return nil
		}
		// A topic deleted since the producer last wrote to it: the producer still holds
		// the old topic's id, which the new topic does not have.
		t.producer.PurgeTopicsFromClient(topic)
		minISR := strconv.Itoa(t.cfg.MinInsyncReplicas)
		resp, err := t.admin.CreateTopic(ctx, t.cfg.Partitions, t.cfg.ReplicationFactor,
			map[string]*string{"min.insync.replicas": &minISR}, topic)
		if err == nil {
			err = resp.Err
		}
		switch {
		case err == nil:
			t.cfg.Logger.Info("kafka: created topic", "topic", topic, "partitions", t.cfg.Partitions,
				"replication_factor", t.cfg.ReplicationFactor, "min_insync_replicas", t.cfg.MinInsyncReplicas)
		case errors.Is(err, kerr.TopicAlreadyExists):
		default:
			return fmt.Errorf("kafka: creating topic %q with %d partitions, replication factor %d, min.insync.replicas %d: %w",
				topic, t.cfg.Partitions, t.cfg.ReplicationFactor, t.cfg.MinInsyncReplicas, err)
		}
		if detail, err = t.waitLeaders(ctx, topic); err != nil {
			return err
		}
	}
	return t.checkDurability(ctx, topic, detail)
}

// adminTimeout bounds one provisioning.
func adminTimeout(c Config) time.Duration { return max(c.DialTimeout, 10*time.Second) }

// topicInfo is what provisioning needs to know of a topic: its partitions' leaders
// and replica counts.
type topicInfo struct {
	partitions []partitionInfo
}

type partitionInfo struct {
	leader   int32
	replicas int
	err      error
}

// describe returns topic's metadata, or nil when the topic does not exist. It asks a
// broker each time (franz-go's admin helpers answer from a cache, which would not see
// a topic just created).
func (t *Transport) describe(ctx context.Context, topic string) (*topicInfo, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, t.producer)
	if err != nil {
		return nil, fmt.Errorf("kafka: describing topic %q: %w", topic, err)
	}
	for _, mt := range resp.Topics {
		if mt.Topic == nil || *mt.Topic != topic {
			continue
		}
		if err := kerr.ErrorForCode(mt.ErrorCode); err != nil {
			if errors.Is(err, kerr.UnknownTopicOrPartition) {
				return nil, nil
			}
			return nil, fmt.Errorf("kafka: describing topic %q: %w", topic, err)
		}
		info := &topicInfo{}
		for _, p := range mt.Partitions {
			info.partitions = append(info.partitions, partitionInfo{leader: p.Leader, replicas: len(p.Replicas), err: kerr.ErrorForCode(p.ErrorCode)})
		}
		return info, nil
	}
	return nil, nil
}

// waitLeaders polls until the new topic has every partition led; a real cluster takes
// a moment to elect them after CreateTopics returns.
func (t *Transport) waitLeaders(ctx context.Context, topic string) (*topicInfo, error) {
	for {
		d, err := t.describe(ctx, topic)
		if err == nil && d != nil && len(d.partitions) >= int(t.cfg.Partitions) && d.allLed() {
			return d, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("kafka: topic %q was created but its partitions have no leader yet: %w", topic, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (d *topicInfo) allLed() bool {
	for _, p := range d.partitions {
		if p.err != nil || p.leader < 0 {
			return false
		}
	}
	return true
}

// checkDurability compares an existing topic's replication factor and
// min.insync.replicas with the configured ones: a warning, or with StrictDurability an
// error wrapping ErrLessDurable.
func (t *Transport) checkDurability(ctx context.Context, topic string, d *topicInfo) error {
	rf := -1
	for _, p := range d.partitions {
		if rf < 0 || p.replicas < rf {
			rf = p.replicas
		}
	}
	minISR, err := t.minInsyncReplicas(ctx, topic)
	if err != nil {
		return err
	}
	if rf >= int(t.cfg.ReplicationFactor) && minISR >= t.cfg.MinInsyncReplicas {
		return nil
	}
	if t.cfg.StrictDurability {
		return fmt.Errorf("%w: %q has replication factor %d (want %d) and min.insync.replicas %d (want %d)",
			ErrLessDurable, topic, rf, t.cfg.ReplicationFactor, minISR, t.cfg.MinInsyncReplicas)
	}
	t.cfg.Logger.Warn("kafka topic is less durable than configured: an acknowledged message can be lost with fewer broker failures",
		"topic", topic, "replication_factor", rf, "want_replication_factor", t.cfg.ReplicationFactor,
		"min_insync_replicas", minISR, "want_min_insync_replicas", t.cfg.MinInsyncReplicas)
	return nil
}

// minInsyncReplicas reads the topic's effective min.insync.replicas (its own setting
// or the broker default it inherits).
func (t *Transport) minInsyncReplicas(ctx context.Context, topic string) (int, error) {
	rcs, err := t.admin.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("kafka: reading min.insync.replicas of %q: %w", topic, err)
	}
	for _, rc := range rcs {
		if rc.Err != nil {
			return 0, fmt.Errorf("kafka: reading min.insync.replicas of %q: %w", topic, rc.Err)
		}
		for _, c := range rc.Configs {
			if c.Key == "min.insync.replicas" && c.Value != nil {
				n, err := strconv.Atoi(*c.Value)
				if err != nil {
					return 0, fmt.Errorf("kafka: min.insync.replicas of %q is %q", topic, *c.Value)
				}
				return n, nil
			}
		}
	}
	return 1, nil // Kafka's default when nothing sets it
}
