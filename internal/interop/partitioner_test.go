package interop

import (
	"context"
	"fmt"
	"testing"

	pubsub "github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/internal/kafkatest"
)

// TestKeyPartitionsMatchLibrdkafka puts 50 keys on a 6-partition topic with
// librdkafka and with pubsubkit: librdkafka's murmur2_random picks the partition
// pubsubkit picks by default, and librdkafka's default (consistent_random, CRC-32) the
// one pubsubkit picks with partitioner=crc32.
func TestKeyPartitionsMatchLibrdkafka(t *testing.T) {
	t.Parallel()
	requirePython(t)
	cluster := kafkatest.New(t)
	const partitions = 6
	keys := make([]string, 50)
	for i := range keys {
		keys[i] = fmt.Sprintf("customer-%d", i*7919)
	}
	keys[0], keys[1] = "a", "order:2026-12-02/ü"

	type table = map[string]int32 // key → partition
	byLibrdkafka := func(partitioner string) table {
		topic := kafkatest.Topic("keys-rdkafka-" + partitioner)
		createTopic(t, cluster, topic, partitions)
		config := map[string]any{}
		if partitioner != "" {
			config["partitioner"] = partitioner
		}
		p := producer{Config: rdkafka(cluster, config)}
		for _, k := range keys {
			p.Records = append(p.Records, record{Topic: topic, Key: str(k), Value: str(value{}.json())})
		}
		tab := table{}
		for _, s := range produceAll(t, p) {
			tab[keys[s.Index]] = s.Partition
		}
		return tab
	}
	byPubsubkit := func(params string) table {
		topic := kafkatest.Topic("keys-pubsubkit")
		createTopic(t, cluster, topic, partitions)
		client := openClient(t, cluster, params)
		tp := pubsub.NewTopic[value](topic)
		for _, k := range keys {
			must(t, pubsub.Publish(context.Background(), client, tp, value{}, pubsub.WithMessageKey(k)))
		}
		tab := table{}
		for _, r := range consumeAll(t, rdkafka(cluster, nil), len(keys), topic) {
			tab[*r.Key] = r.Partition
		}
		return tab
	}

	murmur2, crc32 := byLibrdkafka("murmur2_random"), byLibrdkafka("")
	ours, oursCRC32 := byPubsubkit(""), byPubsubkit("partitioner=crc32")
	differ := 0
	for _, k := range keys {
		if murmur2[k] != ours[k] {
			t.Errorf("key %q: librdkafka murmur2_random partition %d, pubsubkit's default %d", k, murmur2[k], ours[k])
		}
		if crc32[k] != oursCRC32[k] {
			t.Errorf("key %q: librdkafka consistent_random partition %d, pubsubkit partitioner=crc32 %d", k, crc32[k], oursCRC32[k])
		}
		if murmur2[k] != crc32[k] {
			differ++
		}
	}
	// The two hashes must disagree on many keys, or the test could not tell them apart.
	if differ < len(keys)/2 {
		t.Errorf("murmur2 and crc32 put only %d of %d keys on different partitions", differ, len(keys))
	}
}
