package kafka

import (
	"hash/crc32"
	"hash/fnv"

	"github.com/twmb/franz-go/pkg/kgo"
)

// partitioners make the producer's partitioner for each Config.Partitioner.
var partitioners = map[string]func() kgo.Partitioner{
	// Java's: murmur2 of the key, positive, modulo the partitions; records without a
	// key fill a batch of one partition, then the next (KIP-794).
	PartitionerMurmur2: func() kgo.Partitioner { return kgo.UniformBytesPartitioner(64<<10, true, true, nil) },
	// librdkafka's consistent_random (its default): CRC-32 of the key.
	PartitionerCRC32: func() kgo.Partitioner { return kgo.StickyKeyPartitioner(kgo.SaramaHasher(crc32.ChecksumIEEE)) },
	// sarama's NewHashPartitioner: FNV-1a of the key.
	PartitionerFNV1a: func() kgo.Partitioner { return kgo.StickyKeyPartitioner(kgo.SaramaCompatHasher(fnv32a)) },
}

func fnv32a(b []byte) uint32 {
	h := fnv.New32a()
	h.Write(b)
	return h.Sum32()
}
