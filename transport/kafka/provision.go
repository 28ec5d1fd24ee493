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
	// maxMessageBytes is the topic's max.message.bytes as read when it was
	// provisioned; 0 when not known (a missing topic with provisioning off).
	maxMessageBytes atomic.Int64
}

// Bounds of kgo's ProducerBatchMaxBytes.
const (
	minBatchBytes = 512
	maxBatchBytes = 1 << 30
)

// batchMaxBytes is the producer's largest record batch for topic: the topic's
// max.message.bytes, at most MaxMessageBytes with the dead-letter headroom, so that
// no batch is larger than the broker takes; MaxMessageBytes for a topic not known.
// The producer asks once per partition, after ensure has provisioned the topic.
func (tc *topicCache) batchMaxBytes(topic string) int32 {
	n := tc.t.cfg.MaxMessageBytes
	if v, ok := tc.topics.Load(topic); ok {
		if known := v.(*topicState).maxMessageBytes.Load(); known > 0 {
			n = int(min(known, int64(tc.t.cfg.topicMaxMessageBytes())))
		}
	}
	return int32(min(max(n, minBatchBytes), maxBatchBytes))
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
	maxMessageBytes, err := tc.t.provision(ctx, topic)
	if err != nil {
		return err
	}
	st.maxMessageBytes.Store(int64(maxMessageBytes))
	st.done.Store(true)
	return nil
}

// forget makes the next ensure of topic provision it again: it was deleted.
func (tc *topicCache) forget(topic string) { tc.topics.Delete(topic) }

// provision creates topic when it is missing and provisioning is on, waits until
// every partition has a leader, and checks its durability and its max.message.bytes.
// It returns the topic's max.message.bytes, 0 when the topic does not exist (with
// provisioning off).
//
// A topic it creates gets Config.Partitions, ReplicationFactor, MinInsyncReplicas and
// max.message.bytes of MaxMessageBytes plus transport.DeadLetterHeadroom. The
// configuration of a topic that exists is never changed: one less durable, or with a
// smaller max.message.bytes, is logged (see checkTopic).
func (t *Transport) provision(ctx context.Context, topic string) (int, error) {
	if ctx.Err() != nil {
		return 0, fmt.Errorf("kafka: provisioning %q: %w", topic, ctx.Err())
	}
	ctx, cancel := context.WithTimeout(ctx, adminTimeout(t.cfg))
	defer cancel()
	detail, err := t.describe(ctx, topic)
	if err != nil {
		return 0, err
	}
	if detail == nil {
		if t.cfg.DisableProvisioning {
			// The cluster may create it on first use (auto.create.topics.enable); if
			// not, the producer's error names the topic.
			t.cfg.Logger.Debug("kafka: topic does not exist and provisioning is off", "topic", topic)
			return 0, nil
		}
		// A topic deleted since the producer last wrote to it: the producer still holds
		// the old topic's id, which the new topic does not have.
		t.producer.PurgeTopicsFromClient(topic)
		minISR, maxBytes := strconv.Itoa(t.cfg.MinInsyncReplicas), strconv.Itoa(t.cfg.topicMaxMessageBytes())
		resp, err := t.admin.CreateTopic(ctx, t.cfg.Partitions, t.cfg.ReplicationFactor,
			map[string]*string{"min.insync.replicas": &minISR, "max.message.bytes": &maxBytes}, topic)
		if err == nil {
			err = resp.Err
		}
		switch {
		case err == nil:
			t.cfg.Logger.Info("kafka: created topic", "topic", topic, "partitions", t.cfg.Partitions,
				"replication_factor", t.cfg.ReplicationFactor, "min_insync_replicas", t.cfg.MinInsyncReplicas,
				"max_message_bytes", maxBytes)
		case errors.Is(err, kerr.TopicAlreadyExists):
		default:
			return 0, fmt.Errorf("kafka: creating topic %q with %d partitions, replication factor %d, min.insync.replicas %d, max.message.bytes %s: %w",
				topic, t.cfg.Partitions, t.cfg.ReplicationFactor, t.cfg.MinInsyncReplicas, maxBytes, err)
		}
		if detail, err = t.waitLeaders(ctx, topic); err != nil {
			return 0, err
		}
	}
	return t.checkTopic(ctx, topic, detail)
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

// checkTopic compares an existing topic's replication factor and
// min.insync.replicas with the configured ones (a warning, or with StrictDurability
// an error wrapping ErrLessDurable), and notes at debug level, once per topic, when
// its max.message.bytes is below MaxMessageBytes plus the dead-letter headroom (the
// client, which knows which topic takes whose dead letters, warns when one could be
// refused; see MessageLimit). It returns the topic's max.message.bytes.
func (t *Transport) checkTopic(ctx context.Context, topic string, d *topicInfo) (int, error) {
	rf := -1
	for _, p := range d.partitions {
		if rf < 0 || p.replicas < rf {
			rf = p.replicas
		}
	}
	minISR, maxBytes, err := t.topicConfigs(ctx, topic)
	if err != nil {
		return 0, err
	}
	if maxBytes > 0 && maxBytes < t.cfg.topicMaxMessageBytes() {
		if _, noted := t.smallTopics.LoadOrStore(topic, true); !noted {
			t.cfg.Logger.Debug("kafka: topic takes smaller record batches (max.message.bytes) than max_message_bytes plus the dead-letter headroom; a message it cannot take is refused with ErrMessageTooLarge. This matters for a dead-letter topic only, and the client warns when a subscription's dead letters could be refused",
				"topic", topic, "max_message_bytes", maxBytes, "max_message_bytes_with_headroom", t.cfg.topicMaxMessageBytes())
		}
	}
	if rf >= int(t.cfg.ReplicationFactor) && minISR >= t.cfg.MinInsyncReplicas {
		return maxBytes, nil
	}
	if t.cfg.StrictDurability {
		return 0, fmt.Errorf("%w: %q has replication factor %d (want %d) and min.insync.replicas %d (want %d)",
			ErrLessDurable, topic, rf, t.cfg.ReplicationFactor, minISR, t.cfg.MinInsyncReplicas)
	}
	t.cfg.Logger.Warn("kafka topic is less durable than configured: an acknowledged message can be lost with fewer broker failures",
		"topic", topic, "replication_factor", rf, "want_replication_factor", t.cfg.ReplicationFactor,
		"min_insync_replicas", minISR, "want_min_insync_replicas", t.cfg.MinInsyncReplicas)
	return maxBytes, nil
}

// topicConfigs reads the topic's effective min.insync.replicas and max.message.bytes
// (its own settings or the broker defaults it inherits); Kafka's defaults, 1 and 0
// (unknown), when the broker reports none.
func (t *Transport) topicConfigs(ctx context.Context, topic string) (minISR, maxMessageBytes int, err error) {
	rcs, err := t.admin.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return 0, 0, fmt.Errorf("kafka: reading the configuration of %q: %w", topic, err)
	}
	minISR = 1
	for _, rc := range rcs {
		if rc.Err != nil {
			return 0, 0, fmt.Errorf("kafka: reading the configuration of %q: %w", topic, rc.Err)
		}
		for _, c := range rc.Configs {
			if c.Value == nil || (c.Key != "min.insync.replicas" && c.Key != "max.message.bytes") {
				continue
			}
			n, err := strconv.Atoi(*c.Value)
			if err != nil {
				return 0, 0, fmt.Errorf("kafka: %s of %q is %q", c.Key, topic, *c.Value)
			}
			if c.Key == "min.insync.replicas" {
				minISR = n
			} else {
				maxMessageBytes = n
			}
		}
	}
	return minISR, maxMessageBytes, nil
}
