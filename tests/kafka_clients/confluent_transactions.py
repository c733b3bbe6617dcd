"""confluent-kafka (librdkafka) transactions against Eddy.

    python3 confluent_transactions.py BOOTSTRAP TOPIC run        # commit, abort, offsets, fencing
    python3 confluent_transactions.py BOOTSTRAP TOPIC leave-open # produce in a transaction, then exit without ending it
    python3 confluent_transactions.py BOOTSTRAP TOPIC count      # what read_committed / read_uncommitted consumers see

Prints one JSON object with what happened; the Rust test judges it.
"""
import json
import os
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

bootstrap, topic, phase = sys.argv[1], sys.argv[2], sys.argv[3]
out = {}


def producer(txn_id):
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id, "linger.ms": 5})
    p.init_transactions(30)
    return p


def read_all(isolation, group):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "isolation.level": isolation})
    c.subscribe([topic])
    keys = []
    idle_until = time.time() + 5
    while time.time() < idle_until:
        m = c.poll(0.2)
        if m is None or m.error():
            continue
        keys.append(m.key().decode())
        idle_until = time.time() + 2
    c.close()
    return keys


if phase == "run":
    p = producer("tx-main")
    p.begin_transaction()
    for i in range(100):
        p.produce(topic, key=f"c1-{i}", value=json.dumps({"n": i, "txn": "c1"}))
    p.commit_transaction(30)
    p.begin_transaction()
    for i in range(50):
        p.produce(topic, key=f"a-{i}", value=json.dumps({"n": i, "txn": "a"}))
    p.flush()
    p.abort_transaction(30)
    # consume-transform-produce: offsets of a source topic committed in the transaction.
    src = topic + "-src"
    plain = Producer({"bootstrap.servers": bootstrap})
    for i in range(10):
        plain.produce(src, key=f"s{i}", value=json.dumps({"n": i, "txn": "src"}))
    plain.flush()
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "tx-group", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.subscribe([src])
    got = []
    deadline = time.time() + 30
    while len(got) < 10 and time.time() < deadline:
        m = c.poll(0.2)
        if m is not None and not m.error():
            got.append(m)
    p.begin_transaction()
    for m in got:
        p.produce(topic, key="t-" + m.key().decode(), value=m.value())
    positions = c.position(c.assignment())
    p.send_offsets_to_transaction(positions, c.consumer_group_metadata(), 30)
    p.commit_transaction(30)
    committed = c.committed([TopicPartition(src, 0)], timeout=10)
    out["source_committed_offset"] = committed[0].offset
    c.close()
    # A second instance with the same transactional id fences the first.
    p2 = producer("tx-main")
    try:
        p.begin_transaction()
        p.produce(topic, key="fenced", value=json.dumps({"n": 0, "txn": "fenced"}))
        p.commit_transaction(10)
        out["fenced"] = False
    except KafkaException as e:
        out["fenced"] = True
        out["fenced_error"] = str(e)
    p2.begin_transaction()
    p2.produce(topic, key="c2-0", value=json.dumps({"n": 0, "txn": "c2"}))
    p2.commit_transaction(30)
elif phase == "leave-open":
    p = producer("tx-crash")
    p.begin_transaction()
    for i in range(20):
        p.produce(topic, key=f"open-{i}", value=json.dumps({"n": i, "txn": "open"}))
    p.flush()
    out["left_open"] = 20
    print(json.dumps(out), flush=True)
    os._exit(0)
elif phase == "commit-one":
    p = producer("tx-after")
    p.begin_transaction()
    p.produce(topic, key="after-0", value=json.dumps({"n": 0, "txn": "after"}))
    p.commit_transaction(30)
elif phase == "count":
    stamp = str(time.time())
    out["committed"] = sorted(read_all("read_committed", "rc-" + stamp))
    out["uncommitted"] = sorted(read_all("read_uncommitted", "ru-" + stamp))
print(json.dumps(out))
