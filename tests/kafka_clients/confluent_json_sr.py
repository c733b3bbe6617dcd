"""Confluent's Python JSONSerializer / JSONDeserializer against Eddy's registry and Kafka listener.

Usage: confluent_json_sr.py BOOTSTRAP REGISTRY_URL produce TOPIC COUNT
       confluent_json_sr.py BOOTSTRAP REGISTRY_URL consume TOPIC COUNT
"""
import json
import sys

from confluent_kafka import SerializingProducer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from serdes_consume import consume

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
        rows = consume(bootstrap, topic, count, JSONDeserializer(None, schema_registry_client=registry))
        latest = registry.get_latest_version(f"{topic}-value")
        print(json.dumps({"rows": rows, "schema_type": latest.schema.schema_type}))


if __name__ == "__main__":
    main()
