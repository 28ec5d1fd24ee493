"""Produce records with librdkafka (confluent_kafka.Producer), as a test describes them.

Reads one JSON document from stdin: a list of producers, each
    {"config": {librdkafka settings},
     "records": [record, ...]}                      # a plain producer, or
    {"config": {..., "transactional.id": "..."},
     "transactions": [{"commit": true|false, "records": [record, ...]}, ...]}
where a record is
    {"topic": str, "value": str|null, "key": str|null,
     "headers": [[name, value], ...], "partition": int (optional), "timestamp": ms (optional)}.
Writes one JSON line per record once it is stored:
    {"producer": i, "index": j, "topic", "partition", "offset", "timestamp"}
(index counts the producer's records across its transactions). Exits 1, with the
error on stderr, when a record is not stored.
"""
import json
import sys

from confluent_kafka import KafkaException, Producer

FLUSH_TIMEOUT = 20


def produce(number, spec, out):
    failures = []
    producer = Producer(spec["config"])

    def report(index):
        def delivered(err, msg):
            if err is not None:
                failures.append("producer %d record %d: %s" % (number, index, err))
                return
            out.append({"producer": number, "index": index, "topic": msg.topic(),
                        "partition": msg.partition(), "offset": msg.offset(),
                        "timestamp": msg.timestamp()[1]})
        return delivered

    def send(index, record):
        kwargs = {"value": encode(record.get("value")), "key": encode(record.get("key")),
                  "headers": [(k, encode(v)) for k, v in record.get("headers", [])],
                  "on_delivery": report(index)}
        if "partition" in record:
            kwargs["partition"] = record["partition"]
        if "timestamp" in record:
            kwargs["timestamp"] = record["timestamp"]
        producer.produce(record["topic"], **kwargs)
        producer.poll(0)

    index = 0
    if "transactions" in spec:
        producer.init_transactions(FLUSH_TIMEOUT)
        for txn in spec["transactions"]:
            producer.begin_transaction()
            for record in txn["records"]:
                send(index, record)
                index += 1
            producer.flush(FLUSH_TIMEOUT)
            if txn["commit"]:
                producer.commit_transaction(FLUSH_TIMEOUT)
            else:
                producer.abort_transaction(FLUSH_TIMEOUT)
    else:
        for record in spec["records"]:
            send(index, record)
            index += 1
    left = producer.flush(FLUSH_TIMEOUT)
    if left:
        failures.append("producer %d: %d records not stored after %ds" % (number, left, FLUSH_TIMEOUT))
    return failures


def encode(v):
    return None if v is None else v.encode("utf-8")


def main():
    specs = json.load(sys.stdin)
    out, failures = [], []
    try:
        for number, spec in enumerate(specs):
            failures += produce(number, spec, out)
    except KafkaException as e:
        failures.append(str(e))
    for line in out:
        print(json.dumps(line))
    if failures:
        print("\n".join(failures), file=sys.stderr)
        sys.exit(1)


main()
