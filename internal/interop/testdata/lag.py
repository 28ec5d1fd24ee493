"""Report a consumer group's committed offsets and a topic's watermarks with librdkafka.

Reads one JSON document from stdin: {"config": {librdkafka settings}, "topic": str,
"group": str}. The group is not joined: its committed offsets are only read. Prints
one JSON document:
    {"partitions": [{"partition", "committed", "low", "high"}, ...]}
with committed -1 for a partition the group never committed.
"""
import json
import sys

from confluent_kafka import Consumer, TopicPartition

TIMEOUT = 10


def main():
    spec = json.load(sys.stdin)
    config = {"group.id": spec["group"], "enable.auto.commit": False}
    config.update(spec.get("config", {}))
    consumer = Consumer(config)
    try:
        topic = consumer.list_topics(spec["topic"], timeout=TIMEOUT).topics[spec["topic"]]
        if topic.error is not None:
            raise SystemExit("lag: topic %s: %s" % (spec["topic"], topic.error))
        partitions = sorted(topic.partitions)
        committed = consumer.committed([TopicPartition(spec["topic"], p) for p in partitions], timeout=TIMEOUT)
        out = []
        for tp in committed:
            low, high = consumer.get_watermark_offsets(TopicPartition(spec["topic"], tp.partition), timeout=TIMEOUT)
            out.append({"partition": tp.partition, "committed": tp.offset if tp.offset >= 0 else -1,
                        "low": low, "high": high})
        print(json.dumps({"partitions": out}))
    finally:
        consumer.close()


main()
