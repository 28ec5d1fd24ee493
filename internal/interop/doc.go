// Package interop holds tests that run clients nobody here wrote against pubsubkit on
// the Kafka cluster of package kafkatest: librdkafka through Debian's
// python3-confluent-kafka (the scripts in testdata, run with /usr/bin/python3) and
// kcat. They check that records from those clients reach typed handlers with the
// right id, key, headers, time, correlation id and payload (CloudEvents in both modes
// included); that those clients read what pubsubkit writes (values, keys, headers,
// dead letters with their reasons, Knative-style dead letters of the shape Knative
// writes); that correlation ids in every spelling and the CloudEvents tracing
// extension carry a conversation through a handler; that a librdkafka member (with
// its default balancers, and with cooperative-sticky) and an IBM/sarama member with
// its default configuration each share a consumer group with a pubsubkit
// subscription, taking over from it and it from them; that keys land on the
// partitions librdkafka picks; and that they report the committed offsets and lag
// pubsubkit reports. README.md's table of other Kafka clients is drawn from these
// tests.
//
// A missing tool skips its test, or fails it when the environment variable CI is
// "true", naming the Debian package to install.
package interop
