// Package interop holds tests that run clients nobody here wrote against pubsubkit on
// the Kafka cluster of package kafkatest: librdkafka through Debian's
// python3-confluent-kafka (the scripts in testdata, run with /usr/bin/python3) and
// kcat. They check that records from those clients reach typed handlers with the
// right id, key, headers, time, correlation id and payload (CloudEvents in both modes
// included); that those clients read what pubsubkit writes (values, keys, headers,
// dead letters with their reasons, Knative-style dead letters); that a librdkafka
// member shares a consumer group with a pubsubkit subscription; that keys land on the
// partitions librdkafka picks; and that they report the committed offsets and lag
// pubsubkit reports.
//
// A missing tool skips its test, or fails it when the environment variable CI is
// "true", naming the Debian package to install.
package interop
