"""Be one member of a consumer group with librdkafka until told to leave.

Reads one JSON line from stdin: {"config": {librdkafka settings with group.id},
"topic": str}. Prints JSON lines as things happen, flushed at once:
    {"event": "assigned", "partitions": [int, ...]}   (partitions added by a rebalance)
    {"event": "revoked", "partitions": [int, ...]}
    {"event": "message", "partition", "offset", "key", "value"}
    {"event": "left"}                                  (after the consumer closed)
A second line on stdin (or its end) makes it commit what it read, leave the group and
exit. Each printed message's offset is stored for the commit only after it is printed.
"""
import json
import sys
import threading

from confluent_kafka import Consumer


def emit(**fields):
    print(json.dumps(fields), flush=True)


def main():
    spec = json.loads(sys.stdin.readline())
    leave = threading.Event()

    def wait_for_leave():
        sys.stdin.readline()
        leave.set()

    threading.Thread(target=wait_for_leave, daemon=True).start()
    config = {"auto.offset.reset": "earliest", "enable.auto.offset.store": False}
    config.update(spec["config"])
    consumer = Consumer(config)
    consumer.subscribe([spec["topic"]],
                       on_assign=lambda c, ps: emit(event="assigned", partitions=[p.partition for p in ps]),
                       on_revoke=lambda c, ps: emit(event="revoked", partitions=[p.partition for p in ps]))
    try:
        while not leave.is_set():
            msg = consumer.poll(0.1)
            if msg is None or msg.error():
                continue
            emit(event="message", partition=msg.partition(), offset=msg.offset(),
                 key=None if msg.key() is None else msg.key().decode("utf-8"),
                 value=None if msg.value() is None else msg.value().decode("utf-8"))
            consumer.store_offsets(msg)
    finally:
        consumer.close()
    emit(event="left")


main()
