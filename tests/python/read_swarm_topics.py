"""An outside consumer of the swarm's topics: Confluent's Python client and its
schema-registry Avro deserializer read compliance-gate's trigger topics and audit log,
and the erasure receipts.

Usage: read_swarm_topics.py BOOTSTRAP REGISTRY_URL TOPIC...
Prints JSON per topic: records read; for triggers, distinct idempotency keys; for the
audit log, decisions and checkpoints; for receipts, the requests and agents named.
"""

import json
import sys

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext


def read(consumer, deserializer, topic):
    metadata = consumer.list_topics(topic, timeout=10)
    ends = {}
    for p in sorted(metadata.topics[topic].partitions):
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        if high > low:
            ends[p] = high - 1
    consumer.assign([TopicPartition(topic, p, 0) for p in ends])
    values = []
    while ends:
        message = consumer.poll(10)
        if message is None:
            raise SystemExit(f"{topic}: timed out with partitions {sorted(ends)} unfinished")
        if message.error():
            raise SystemExit(str(message.error()))
        values.append(
            deserializer(message.value(), SerializationContext(topic, MessageField.VALUE))
        )
        if message.offset() >= ends.get(message.partition(), -1):
            ends.pop(message.partition(), None)
    return values


def main() -> int:
    bootstrap, registry_url, *topics = sys.argv[1:]
    deserializer = AvroDeserializer(SchemaRegistryClient({"url": registry_url}))
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "python-swarm-reader",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    summary = {}
    for topic in topics:
        values = read(consumer, deserializer, topic)
        entry = {"records": len(values)}
        if values and "idempotency_key" in values[0]:
            entry["distinct_idempotency_keys"] = len({v["idempotency_key"] for v in values})
        if values and "previous_hash" in values[0]:
            entry["decisions"] = sum(1 for v in values if v.get("decision") is not None)
            entry["checkpoints"] = sum(1 for v in values if v.get("checkpoint") is not None)
        if values and "request_id" in values[0] and "agent" in values[0]:
            entry["requests"] = sorted({v["request_id"] for v in values})
            entry["agents"] = sorted({v["agent"] for v in values})
        summary[topic] = entry
    consumer.close()
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
