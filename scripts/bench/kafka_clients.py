"""Kafka-client benchmark against Eddy with confluent-kafka (librdkafka).

    python3 kafka_clients.py BOOTSTRAP [RECORDS] [RECORD_BYTES] [PARTITIONS]

1. produce RECORDS records of RECORD_BYTES bytes (no keys, batching) and wait for every
   acknowledgement (acks=all): records/s and MB/s;
2. consume them all with a fresh group consumer: records/s;
3. end-to-end latency: a producer at a fixed 5,000 records/s for 10 s (linger.ms=0) and a
   consumer reading as they arrive; p50/p99/max of (consume time - produce time).
"""
import multiprocessing as mp
import sys
import time

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap = sys.argv[1]
records = int(sys.argv[2]) if len(sys.argv) > 2 else 2_000_000
size = int(sys.argv[3]) if len(sys.argv) > 3 else 100
partitions = int(sys.argv[4]) if len(sys.argv) > 4 else 3
topic = f"bench-{int(time.time())}"
admin = AdminClient({"bootstrap.servers": bootstrap})
admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result()

# 1. produce
value = b"x" * size
p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 10, "batch.size": 1_000_000,
              "queue.buffering.max.messages": 1_000_000, "queue.buffering.max.kbytes": 1_048_576,
              "acks": "all", "enable.idempotence": False})
errors = []
t0 = time.perf_counter()
produce = p.produce
for i in range(records):
    try:
        produce(topic, value)
    except BufferError:
        p.poll(0.005)
        produce(topic, value)
    if i % 50_000 == 0:
        p.poll(0)
left = p.flush(120)
t1 = time.perf_counter()
assert left == 0, f"{left} records not acknowledged"
secs = t1 - t0
print(f"produce: {records} records of {size} bytes, {partitions} partitions, acks=all: "
      f"{secs:.2f} s = {records / secs:,.0f} records/s, {records * size / secs / 1e6:.1f} MB/s")

# 2. consume (a Python consumer: the client's per-message cost is part of the number;
#    scripts/bench-kafka.sh also times kcat, a C client, reading the same topic)
c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}-reader", "auto.offset.reset": "earliest",
              "enable.auto.commit": False, "fetch.max.bytes": 52_428_800, "max.partition.fetch.bytes": 10_485_760})
c.subscribe([topic])
n = 0
t0 = None
deadline = time.time() + 300
while n < records and time.time() < deadline:
    msgs = c.consume(num_messages=10_000, timeout=1.0)
    if msgs and t0 is None:
        t0 = time.perf_counter()
    n += len(msgs)
t1 = time.perf_counter()
c.close()
secs = t1 - (t0 or t1)
print(f"consume (confluent-kafka, Python): {n} records: {secs:.2f} s = {n / max(secs, 1e-9):,.0f} records/s (from the first record)")
print(f"topic: {topic}")


# 3. end-to-end latency at a fixed rate; the consumer runs in its own process so the two
#    clients do not share Python's interpreter lock.
def reader(bootstrap, topic, expected, out, ready):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}-latency", "auto.offset.reset": "latest",
                  "enable.auto.commit": False, "fetch.wait.max.ms": 500, "fetch.min.bytes": 1})
    c.subscribe([topic])
    while not c.assignment():
        c.poll(0.1)
    c.poll(0.5)
    ready.set()
    lat = []
    deadline = time.time() + 60
    while len(lat) < expected and time.time() < deadline:
        # poll returns each record as soon as it arrives (consume() would wait to fill a batch).
        m = c.poll(0.1)
        if m is not None and m.error() is None:
            lat.append(time.time() - float(m.value().decode()))
    c.close()
    out.put(lat)


lat_topic = topic + "-latency"
admin.create_topics([NewTopic(lat_topic, 1, 1)])[lat_topic].result()
rate, duration = 5000, 10
expected = rate * duration
out, ready = mp.Queue(), mp.Event()
proc = mp.Process(target=reader, args=(bootstrap, lat_topic, expected, out, ready))
proc.start()
ready.wait(30)
time.sleep(1.0)
p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "acks": "all"})
start = time.time()
for i in range(expected):
    delay = start + i / rate - time.time()
    if delay > 0:
        time.sleep(delay)
    p.produce(lat_topic, f"{time.time():.6f}".encode())
    p.poll(0)
p.flush(30)
latencies = out.get(timeout=90)
proc.join()
ms = sorted(x * 1000 for x in latencies)
q = lambda f: ms[min(len(ms) - 1, int(f * len(ms)))]
print(f"end-to-end latency at {rate} records/s for {duration} s ({len(ms)} of {expected} records, acks=all): "
      f"p50 {q(0.50):.2f} ms, p99 {q(0.99):.2f} ms, max {ms[-1]:.2f} ms")
