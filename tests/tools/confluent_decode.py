"""Reads topics with Confluent's own Python client and decodes every value with its
AvroDeserializer and a schema registry, as a stack's other consumers would.

    python3 confluent_decode.py BOOTSTRAP REGISTRY_URL TOPIC [TOPIC ...]

Prints one JSON object: per topic, the records read, those decoded, and the first error.
Exit 3 when confluent-kafka is not installed."""
import json
import sys

try:
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext
except ImportError as e:  # pragma: no cover
    print(f"confluent-kafka is not installed: {e}", file=sys.stderr)
    sys.exit(3)

bootstrap, registry, topics = sys.argv[1], sys.argv[2], sys.argv[3:]
deserializer = AvroDeserializer(SchemaRegistryClient({"url": registry}))
out = {}
for topic in topics:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"confluent-check-{topic}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    md = c.list_topics(topic, timeout=10)
    parts = [TopicPartition(topic, p, 0) for p in md.topics[topic].partitions]
    ends = {p.partition: c.get_watermark_offsets(p, timeout=10)[1] for p in parts}
    c.assign(parts)
    want = sum(ends.values())
    read, decoded, first_error, sample = 0, 0, None, None
    while read < want:
        m = c.poll(10)
        if m is None:
            break
        if m.error():
            continue
        read += 1
        try:
            v = deserializer(m.value(), SerializationContext(topic, MessageField.VALUE))
            decoded += 1
            sample = sample or v
        except Exception as e:  # noqa: BLE001
            first_error = first_error or f"{type(e).__name__}: {e}"
    c.close()
    out[topic] = {"records": want, "read": read, "decoded": decoded, "error": first_error,
                  "sample_fields": sorted(sample.keys()) if isinstance(sample, dict) else None}
print(json.dumps(out))
