"""Read records with librdkafka (confluent_kafka.Consumer) and print them.

Reads one JSON document from stdin:
    {"config": {librdkafka settings}, "topics": [str, ...], "count": n, "timeout": seconds}
Without "group.id" in config the consumer gets a group of its own that commits
nothing, starting at the oldest record. Prints one JSON line per record until count
records were read or timeout seconds passed:
    {"topic", "partition", "offset", "timestamp", "key": str|null, "value": str|null,
     "headers": [[name, value|null], ...]}
"""
import json
import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaError


def decode(b):
    return None if b is None else b.decode("utf-8")


def main():
    spec = json.load(sys.stdin)
    config = {"auto.offset.reset": "earliest", "enable.auto.commit": False,
              "group.id": "interop-reader-" + uuid.uuid4().hex}
    config.update(spec.get("config", {}))
    consumer = Consumer(config)
    consumer.subscribe(spec["topics"])
    deadline = time.monotonic() + spec["timeout"]
    read = 0
    try:
        while read < spec["count"] and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    continue
                print("consume: %s" % msg.error(), file=sys.stderr)
                continue
            print(json.dumps({
                "topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset(),
                "timestamp": msg.timestamp()[1], "key": decode(msg.key()),
                "value": decode(msg.value()),
                "headers": [[k, decode(v)] for k, v in (msg.headers() or [])],
            }), flush=True)
            read += 1
    finally:
        consumer.close()


main()
