"""Confluent's Python JSONSerializer / JSONDeserializer against Eddy's registry and Kafka listener.

Usage: confluent_json_sr.py BOOTSTRAP REGISTRY_URL produce TOPIC COUNT
       confluent_json_sr.py BOOTSTRAP REGISTRY_URL consume TOPIC COUNT
"""
import json
import sys
import uuid

from confluent_kafka import DeserializingConsumer, SerializingProducer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer

VISIT = json.dumps({
    "type": "object",
    "title": "Visit",
    "properties": {
        "page": {"type": "string"},
        "seconds": {"type": "integer", "connect.type": "int32"},
    },
    "required": ["page"],
})


def main():
    bootstrap, registry_url, mode, topic, count = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
    registry = SchemaRegistryClient({"url": registry_url})
    if mode == "produce":
        producer = SerializingProducer({"bootstrap.servers": bootstrap, "value.serializer": JSONSerializer(VISIT, registry)})
        for i in range(count):
            producer.produce(topic, value={"page": f"/p{i}", "seconds": i})
        producer.flush(30)
        print(json.dumps({"produced": count, "schema_id": registry.get_latest_version(f"{topic}-value").schema_id}))
    else:
        consumer = DeserializingConsumer({
            "bootstrap.servers": bootstrap,
            "group.id": f"json-sr-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "value.deserializer": JSONDeserializer(None, schema_registry_client=registry),
        })
        consumer.subscribe([topic])
        rows, tries = [], 0
        while len(rows) < count and tries < 120:
            msg = consumer.poll(1.0)
            tries += 1
            if msg is None:
                continue
            if msg.error():
                raise SystemExit(f"consume error: {msg.error()}")
            rows.append(msg.value())
        consumer.close()
        latest = registry.get_latest_version(f"{topic}-value")
        print(json.dumps({"rows": rows, "schema_type": latest.schema.schema_type}))


if __name__ == "__main__":
    main()
