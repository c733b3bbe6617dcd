"""confluent-kafka (librdkafka) against Eddy: produce with lz4 and zstd compression, then
read everything back with a group consumer and commit.

    python3 confluent_compression.py BOOTSTRAP TOPIC GROUP

Prints one JSON object with what happened; the Rust test judges it.
"""
import json
import sys
import time

from confluent_kafka import Consumer, Producer

bootstrap, topic, group = sys.argv[1], sys.argv[2], sys.argv[3]
out = {"delivered": 0, "delivery_errors": []}


def on_delivery(err, msg):
    if err is not None:
        out["delivery_errors"].append(str(err))
    else:
        out["delivered"] += 1


for codec in ("lz4", "zstd"):
    p = Producer({"bootstrap.servers": bootstrap, "compression.type": codec, "linger.ms": 20,
                  "enable.idempotence": True})
    for i in range(500):
        p.produce(topic, key=f"{codec}-{i}", value=json.dumps({"codec": codec, "n": i}), on_delivery=on_delivery)
    p.flush(30)

c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
              "enable.auto.commit": False})
c.subscribe([topic])
seen = {}
deadline = time.time() + 60
while len(seen) < 1000 and time.time() < deadline:
    m = c.poll(0.5)
    if m is None:
        continue
    if m.error():
        out.setdefault("consume_errors", []).append(str(m.error()))
        continue
    seen[m.key().decode()] = json.loads(m.value())
c.commit(asynchronous=False)
c.close()
out["consumed"] = len(seen)
out["values_match_keys"] = all(k == f"{v['codec']}-{v['n']}" for k, v in seen.items())
print(json.dumps(out))
