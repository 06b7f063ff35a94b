"""An outside consumer of the swarm: Confluent's Python client and its schema-registry
Avro deserializer read loyalty.member-state.v1 from the embedded broker and registry.

Usage: read_member_state.py BOOTSTRAP REGISTRY_URL TOPIC
Prints a JSON summary: records read, distinct members, members with a BTYD summary.
"""

import json
import sys

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext


def main() -> int:
    bootstrap, registry_url, topic = sys.argv[1:4]
    deserializer = AvroDeserializer(SchemaRegistryClient({"url": registry_url}))
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "python-outside-client",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    metadata = consumer.list_topics(topic, timeout=10)
    partitions = sorted(metadata.topics[topic].partitions)
    ends = {}
    for p in partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        if high > low:
            ends[p] = high - 1
    consumer.assign([TopicPartition(topic, p, 0) for p in ends])
    latest, records = {}, 0
    while ends:
        message = consumer.poll(10)
        if message is None:
            raise SystemExit(f"timed out with partitions {sorted(ends)} unfinished")
        if message.error():
            raise SystemExit(str(message.error()))
        value = deserializer(message.value(), SerializationContext(topic, MessageField.VALUE))
        latest[message.key().decode()] = value
        records += 1
        if message.offset() >= ends.get(message.partition(), -1):
            ends.pop(message.partition(), None)
    consumer.close()
    with_btyd = sum(1 for v in latest.values() if v.get("btyd") is not None)
    print(json.dumps({"records": records, "members": len(latest), "with_btyd": with_btyd}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
