"""Confluent's Python client with its schema registry serdes against Eddy.

Usage: confluent_avro.py BOOTSTRAP REGISTRY_URL produce TOPIC COUNT
       confluent_avro.py BOOTSTRAP REGISTRY_URL consume TOPIC COUNT

produce: writes COUNT users (string keys, Avro values) with AvroSerializer, which registers
         the schema under TOPIC-value; prints {"produced": n, "schema_id": id}.
consume: reads COUNT records with AvroDeserializer (the writer schema fetched by id) and
         the latest registered schema of TOPIC-value; prints them as JSON.
"""
import json
import sys

from confluent_kafka import SerializingProducer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import StringDeserializer, StringSerializer
from serdes_consume import consume

USER = json.dumps({
    "type": "record",
    "name": "User",
    "namespace": "com.example",
    "fields": [
        {"name": "name", "type": "string"},
        {"name": "age", "type": ["null", "int"], "default": None},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "score", "type": {"type": "bytes", "logicalType": "decimal", "precision": 6, "scale": 2}},
    ],
})


def main():
    bootstrap, registry_url, mode, topic, count = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
    registry = SchemaRegistryClient({"url": registry_url})
    if mode == "produce":
        from decimal import Decimal

        producer = SerializingProducer({
            "bootstrap.servers": bootstrap,
            "key.serializer": StringSerializer("utf_8"),
            "value.serializer": AvroSerializer(registry, USER),
        })
        for i in range(count):
            user = {"name": f"user{i}", "age": None if i % 5 == 0 else 10 + i, "tags": ["t", str(i)], "score": Decimal(f"{i}.25")}
            producer.produce(topic, key=f"k{i}", value=user)
        producer.flush(30)
        latest = registry.get_latest_version(f"{topic}-value")
        print(json.dumps({"produced": count, "schema_id": latest.schema_id}))
    elif mode == "consume":
        values = consume(bootstrap, topic, count, AvroDeserializer(registry), StringDeserializer("utf_8"))
        rows = [{k: (str(v) if not isinstance(v, (int, str, list, dict, type(None))) else v) for k, v in value.items()} for value in values]
        latest = registry.get_latest_version(f"{topic}-value")
        fields = [f["name"] for f in json.loads(latest.schema.schema_str)["fields"]]
        print(json.dumps({"rows": rows, "schema_id": latest.schema_id, "fields": fields}))
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
