"""kafka-python against Eddy: an (idempotent) producer, then two consumers in one group
that split the partitions, commit, and rebalance when one leaves.

    python3 kafka_python_group.py BOOTSTRAP TOPIC GROUP

Prints one JSON object with what happened; the Rust test judges it.
"""
import json
import sys
import threading
import time

from kafka import KafkaConsumer, KafkaProducer

bootstrap, topic, group = sys.argv[1], sys.argv[2], sys.argv[3]
out = {}

producer = KafkaProducer(bootstrap_servers=bootstrap, key_serializer=str.encode,
                         value_serializer=lambda v: json.dumps(v).encode())
out["idempotent"] = bool(producer.config.get("enable_idempotence"))
sent = {}
futures = [(i, producer.send(topic, key=f"k{i}", value={"n": i})) for i in range(200)]
for i, f in futures:
    md = f.get(timeout=30)
    sent[f"k{i}"] = md.partition
producer.flush()
producer.close()
out["sent_partitions"] = sent


class Member(threading.Thread):
    def __init__(self, name):
        super().__init__(daemon=True)
        self.name_ = name
        self.stop = threading.Event()
        self.seen = []
        self.assignment = set()
        self.error = None
        self.consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, client_id=name,
                                      auto_offset_reset="earliest", enable_auto_commit=False,
                                      session_timeout_ms=10000, heartbeat_interval_ms=500)

    def run(self):
        try:
            while not self.stop.is_set():
                batches = self.consumer.poll(timeout_ms=200)
                for tp, records in batches.items():
                    for r in records:
                        self.seen.append((tp.partition, r.offset, r.key.decode()))
                if batches:
                    self.consumer.commit()
                self.assignment = {tp.partition for tp in self.consumer.assignment()}
            self.consumer.close()  # LeaveGroup
        except Exception as e:  # reported to the test
            self.error = repr(e)


def wait_for(cond, secs):
    deadline = time.time() + secs
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return False


a, b = Member("a"), Member("b")
a.start()
b.start()
total = lambda: len({(p, o) for m in (a, b) for (p, o, _) in m.seen})
split = wait_for(lambda: total() >= 200 and a.assignment and b.assignment
                 and not (a.assignment & b.assignment) and len(a.assignment | b.assignment) == 4, 60)
out["split"] = [sorted(a.assignment), sorted(b.assignment)]
out["split_ok"] = split
out["consumed_before_leave"] = total()

b.stop.set()
b.join(30)
producer = KafkaProducer(bootstrap_servers=bootstrap, key_serializer=str.encode,
                         value_serializer=lambda v: json.dumps(v).encode())
for i in range(200, 300):
    producer.send(topic, key=f"k{i}", value={"n": i})
producer.flush()
producer.close()
rebalanced = wait_for(lambda: len(a.assignment) == 4 and total() >= 300, 60)
out["after_leave"] = sorted(a.assignment)
out["rebalanced_ok"] = rebalanced
out["consumed"] = total()
out["keys"] = len({k for m in (a, b) for (_, _, k) in m.seen})
a.stop.set()
a.join(30)
out["errors"] = [m.error for m in (a, b) if m.error]
print(json.dumps(out))
