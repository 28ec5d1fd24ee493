package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
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

// provision creates topic when it is missing and provisioning is on, waits until
// every partition has a leader, and checks its durability.
func (t *Transport) provision(ctx context.Context, topic string) error {
	if ctx.Err() != nil {
		return fmt.Errorf("kafka: provisioning %q: %w", topic, ctx.Err())
	}
	meta, err := t.describe(topic)
	if err != nil {
		return err
	}
	if meta == nil {
		if t.cfg.DisableProvisioning {
			// The cluster may create it on first use (auto.create.topics.enable); if
			// not, the producer's error names the topic.
			t.log.Debug("topic does not exist and provisioning is off", "topic", topic)
			return nil
		}
		detail := &sarama.TopicDetail{
			NumPartitions:     t.cfg.Partitions,
			ReplicationFactor: t.cfg.ReplicationFactor,
			ConfigEntries:     map[string]*string{"min.insync.replicas": new(strconv.Itoa(t.cfg.MinInsyncReplicas))},
		}
		err := t.admin.CreateTopic(topic, detail, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return fmt.Errorf("kafka: creating topic %q with %d partitions, replication factor %d, min.insync.replicas %d: %w",
				topic, t.cfg.Partitions, t.cfg.ReplicationFactor, t.cfg.MinInsyncReplicas, err)
		}
		if err == nil {
			t.log.Info("created topic", "topic", topic, "partitions", t.cfg.Partitions,
				"replication_factor", t.cfg.ReplicationFactor, "min_insync_replicas", t.cfg.MinInsyncReplicas)
		}
		if meta, err = t.waitLeaders(ctx, topic); err != nil {
			return err
		}
	}
	return t.checkDurability(topic, meta)
}

// describe returns topic's metadata, or nil when the topic does not exist.
func (t *Transport) describe(topic string) (*sarama.TopicMetadata, error) {
	metas, err := t.admin.DescribeTopics([]string{topic})
	if err != nil {
		return nil, fmt.Errorf("kafka: describing topic %q: %w", topic, err)
	}
	if len(metas) == 0 {
		return nil, nil
	}
	switch m := metas[0]; {
	case errors.Is(m.Err, sarama.ErrUnknownTopicOrPartition):
		return nil, nil
	case m.Err != sarama.ErrNoError:
		return nil, fmt.Errorf("kafka: describing topic %q: %w", topic, m.Err)
	default:
		return m, nil
	}
}

// waitLeaders polls until the new topic has every partition led; a real cluster takes
// a moment to elect them after CreateTopics returns.
func (t *Transport) waitLeaders(ctx context.Context, topic string) (*sarama.TopicMetadata, error) {
	ctx, cancel := context.WithTimeout(ctx, t.sarama.Admin.Timeout)
	defer cancel()
	for {
		meta, err := t.describe(topic)
		if err == nil && meta != nil && len(meta.Partitions) >= int(t.cfg.Partitions) && allLed(meta) {
			return meta, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("kafka: topic %q was created but its partitions have no leader yet: %w", topic, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func allLed(m *sarama.TopicMetadata) bool {
	for _, p := range m.Partitions {
		if p.Err != sarama.ErrNoError || p.Leader < 0 {
			return false
		}
	}
	return true
}

// checkDurability compares an existing topic's replication factor and
// min.insync.replicas with the configured ones: a warning, or with StrictDurability an
// error wrapping ErrLessDurable.
func (t *Transport) checkDurability(topic string, meta *sarama.TopicMetadata) error {
	rf := -1
	for _, p := range meta.Partitions {
		if rf < 0 || len(p.Replicas) < rf {
			rf = len(p.Replicas)
		}
	}
	minISR, err := t.minInsyncReplicas(topic)
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
	t.log.Warn("kafka topic is less durable than configured: an acknowledged message can be lost with fewer broker failures",
		"topic", topic, "replication_factor", rf, "want_replication_factor", t.cfg.ReplicationFactor,
		"min_insync_replicas", minISR, "want_min_insync_replicas", t.cfg.MinInsyncReplicas)
	return nil
}

// minInsyncReplicas reads the topic's effective min.insync.replicas (its own setting
// or the broker default it inherits).
func (t *Transport) minInsyncReplicas(topic string) (int, error) {
	entries, err := t.admin.DescribeConfig(sarama.ConfigResource{
		Type: sarama.TopicResource, Name: topic, ConfigNames: []string{"min.insync.replicas"},
	})
	if err != nil {
		return 0, fmt.Errorf("kafka: reading min.insync.replicas of %q: %w", topic, err)
	}
	for _, e := range entries {
		if e.Name == "min.insync.replicas" {
			n, err := strconv.Atoi(e.Value)
			if err != nil {
				return 0, fmt.Errorf("kafka: min.insync.replicas of %q is %q", topic, e.Value)
			}
			return n, nil
		}
	}
	return 1, nil // Kafka's default when nothing sets it
}
