package kafka_test

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

// javaMurmur2 is the Java client's org.apache.kafka.common.utils.Utils.murmur2,
// written from its definition: seed 0x9747b28c, m 0x5bd1e995, r 24, the input read
// as little-endian 4-byte words, the tail folded in from the high byte down.
func javaMurmur2(data []byte) int32 {
	const m, r = uint32(0x5bd1e995), 24
	n := len(data)
	h := uint32(0x9747b28c) ^ uint32(n)
	for i := 0; i+4 <= n; i += 4 {
		k := binary.LittleEndian.Uint32(data[i:])
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[n&^3:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

// TestJavaMurmur2Vectors checks javaMurmur2 against the values Kafka's own
// UtilsTest.testMurmur2 expects, so that the table below rests on Java's algorithm.
func TestJavaMurmur2Vectors(t *testing.T) {
	for in, want := range map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	} {
		if got := javaMurmur2([]byte(in)); got != want {
			t.Errorf("murmur2(%q) = %d, want %d", in, got, want)
		}
	}
}

// The expected partition of a key, as each ecosystem computes it.
func javaPartition(key string, n int) int32 {
	return int32(int(uint32(javaMurmur2([]byte(key)))&0x7fffffff) % n) // Utils.toPositive(murmur2) % n
}

func librdkafkaConsistent(key string, n int) int32 {
	return int32(crc32.ChecksumIEEE([]byte(key)) % uint32(n)) // rd_crc32(key) % partition_cnt, unsigned
}

func saramaHash(key string, n int) int32 {
	h := uint32(2166136261) // FNV-1a 32, written out
	for _, b := range []byte(key) {
		h ^= uint32(b)
		h *= 16777619
	}
	p := int32(h) % int32(n)
	if p < 0 {
		p = -p
	}
	return p
}

// routingKeys are keys of several lengths (every murmur2 tail length), and enough of
// them that each hash puts some on every partition of six.
var routingKeys = func() []string {
	keys := []string{"21", "foobar", "abc", "a-little-bit-long-string", "order-42", "user:7", "é"}
	for i := range 40 {
		keys = append(keys, "key-"+strconv.Itoa(i*7919))
	}
	return keys
}()

const routingPartitions = 6

// TestKeyRouting: for each partitioner= of the URL, every keyed record lands on the
// partition its ecosystem's algorithm gives: murmur2 as Java, crc32 as librdkafka's
// consistent partitioner, fnv1a as sarama's hash partitioner.
func TestKeyRouting(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.New(t)
	for _, tc := range []struct {
		partitioner string
		want        func(string, int) int32
	}{{"", javaPartition}, {"murmur2", javaPartition}, {"crc32", librdkafkaConsistent}, {"fnv1a", saramaHash}} {
		t.Run("partitioner="+tc.partitioner, func(t *testing.T) {
			u, err := url.Parse(cluster.URL("partitions=" + strconv.Itoa(routingPartitions)))
			if err != nil {
				t.Fatal(err)
			}
			if tc.partitioner != "" {
				u.RawQuery += "&partitioner=" + tc.partitioner
			}
			tr, err := kafka.Open(context.Background(), u, transport.OpenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			topic := kafkatest.Topic("route")
			keys := routingKeys
			if err := tr.Publish(topic, keyed(len(keys), func(i int) string { return keys[i] })...); err != nil {
				t.Fatal(err)
			}
			got := partitionsOf(t, cluster, topic, len(keys))
			wrong := 0
			for _, k := range keys {
				if want := tc.want(k, routingPartitions); got[k] != want {
					wrong++
					t.Errorf("key %q on partition %d, want %d", k, got[k], want)
				}
			}
			used := map[int32]bool{}
			for _, p := range got {
				used[p] = true
			}
			if len(used) != routingPartitions {
				t.Errorf("the keys used %d of %d partitions; the table does not cover them all", len(used), routingPartitions)
			}
			t.Logf("%d keys, %d on another partition than expected", len(keys), wrong)
		})
	}
}

// TestKeyRoutingMatchesFranzGo: a franz-go producer with its default partitioner
// puts every key on the partition ours (the default, murmur2) does.
func TestKeyRoutingMatchesFranzGo(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.New(t)
	keys := routingKeys
	tr := newTransport(t, cluster, kafka.Config{Partitions: routingPartitions})
	ours, theirs := kafkatest.Topic("route-ours"), kafkatest.Topic("route-kgo")
	if err := tr.Publish(ours, keyed(len(keys), func(i int) string { return keys[i] })...); err != nil {
		t.Fatal(err)
	}
	if err := tr.Provision(context.Background(), theirs); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.Addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, k := range keys {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: theirs, Key: []byte(k), Value: []byte(k)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	a, b := partitionsOf(t, cluster, ours, len(keys)), partitionsOf(t, cluster, theirs, len(keys))
	for _, k := range keys {
		if a[k] != b[k] {
			t.Errorf("key %q: ours on partition %d, franz-go's on %d", k, a[k], b[k])
		}
	}
}

// partitionsOf reads n records of topic with a plain franz-go consumer and returns
// each record key's partition.
func partitionsOf(t *testing.T, cluster *kafkatest.Cluster, topic string, n int) map[string]int32 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.Addrs...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := map[string]int32{}
	for count := 0; count < n; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records of %s", count, n, topic)
		}
		fs.EachRecord(func(r *kgo.Record) {
			got[string(r.Key)] = r.Partition
			count++
		})
	}
	return got
}
