"""Shared by the schema registry serde scripts: reading a topic with Confluent's
DeserializingConsumer from the beginning, in a fresh group."""
import uuid

from confluent_kafka import DeserializingConsumer


def consume(bootstrap, topic, count, value_deserializer, key_deserializer=None):
    """The first `count` values of `topic` (fewer if 120 polls of a second find no more)."""
    config = {
        "bootstrap.servers": bootstrap,
        "group.id": f"serdes-{topic}-{uuid.uuid4()}",
        "auto.offset.reset": "earliest",
        "value.deserializer": value_deserializer,
    }
    if key_deserializer is not None:
        config["key.deserializer"] = key_deserializer
    consumer = DeserializingConsumer(config)
    consumer.subscribe([topic])
    values, tries = [], 0
    while len(values) < count and tries < 120:
        msg = consumer.poll(1.0)
        tries += 1
        if msg is None:
            continue
        if msg.error():
            raise SystemExit(f"consume error: {msg.error()}")
        values.append(msg.value())
    consumer.close()
    return values
