"""Confluent's Python ProtobufSerializer / ProtobufDeserializer against Eddy's registry and
Kafka listener. The message classes are built at run time from descriptors (no protoc).

Usage: confluent_protobuf.py BOOTSTRAP REGISTRY_URL produce TOPIC COUNT
       confluent_protobuf.py BOOTSTRAP REGISTRY_URL consume TOPIC COUNT

produce: writes COUNT shop.Order messages with ProtobufSerializer, which registers the
         schema (a base64 FileDescriptorProto) under TOPIC-value; prints
         {"produced": n, "schema_id": id}.
consume: reads COUNT records with ProtobufDeserializer, its message class made from the
         schema the registry answers for TOPIC-value with format=serialized; prints them.
"""
import base64
import json
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory, timestamp_pb2
from google.protobuf.descriptor_pb2 import FieldDescriptorProto as F

from confluent_kafka import SerializingProducer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from serdes_consume import consume


def order_file():
    """shop/order.proto: an Order with scalars, a repeated field, a nested message, an
    enum, a map and a google.protobuf.Timestamp."""
    f = descriptor_pb2.FileDescriptorProto(name="shop/order.proto", package="shop", syntax="proto3")
    f.dependency.append("google/protobuf/timestamp.proto")
    status = f.enum_type.add(name="Status")
    for i, name in enumerate(["NEW", "PAID", "SHIPPED"]):
        status.value.add(name=name, number=i)
    customer = f.message_type.add(name="Customer")
    customer.field.add(name="name", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    order = f.message_type.add(name="Order")
    entry = order.nested_type.add(name="AttrsEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    order.field.add(name="id", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    order.field.add(name="qty", number=2, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    order.field.add(name="price", number=3, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
    order.field.add(name="tags", number=4, type=F.TYPE_STRING, label=F.LABEL_REPEATED)
    order.field.add(name="customer", number=5, type=F.TYPE_MESSAGE, type_name=".shop.Customer", label=F.LABEL_OPTIONAL)
    order.field.add(name="status", number=6, type=F.TYPE_ENUM, type_name=".shop.Status", label=F.LABEL_OPTIONAL)
    order.field.add(name="attrs", number=7, type=F.TYPE_MESSAGE, type_name=".shop.Order.AttrsEntry", label=F.LABEL_REPEATED)
    order.field.add(name="created", number=8, type=F.TYPE_MESSAGE, type_name=".google.protobuf.Timestamp", label=F.LABEL_OPTIONAL)
    return f


def message_class(file_proto, message_name):
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(timestamp_pb2.DESCRIPTOR.serialized_pb)
    pool.Add(file_proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(message_name))


def main():
    bootstrap, registry_url, mode, topic, count = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
    registry = SchemaRegistryClient({"url": registry_url})
    if mode == "produce":
        order = message_class(order_file(), "shop.Order")
        serializer = ProtobufSerializer(order, registry, {"use.deprecated.format": False})
        producer = SerializingProducer({"bootstrap.servers": bootstrap, "value.serializer": serializer})
        for i in range(count):
            msg = order(id=f"o{i}", qty=i, price=i * 1.5, tags=["t", str(i)], status=i % 3, attrs={"a": i * 10})
            msg.customer.name = f"c{i}"
            msg.created.FromMilliseconds(1_700_000_000_000 + i)
            producer.produce(topic, value=msg)
        producer.flush(30)
        print(json.dumps({"produced": count, "schema_id": registry.get_latest_version(f"{topic}-value").schema_id}))
    else:
        latest = registry.get_latest_version(f"{topic}-value", fmt="serialized")
        file_proto = descriptor_pb2.FileDescriptorProto()
        file_proto.ParseFromString(base64.standard_b64decode(latest.schema.schema_str))
        file_proto.name = "eddy-output.proto"
        name = (file_proto.package + "." if file_proto.package else "") + file_proto.message_type[0].name
        cls = message_class(file_proto, name)
        deserializer = ProtobufDeserializer(cls, {"use.deprecated.format": False}, schema_registry_client=registry)
        rows = [json_format.MessageToDict(m, preserving_proto_field_name=True) for m in consume(bootstrap, topic, count, deserializer)]
        print(json.dumps({"rows": rows, "schema_type": latest.schema.schema_type, "message": name}))


if __name__ == "__main__":
    main()
