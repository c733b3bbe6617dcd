#!/usr/bin/env bash
# Eddy's Kafka client against a broker not written here: tansu (crates.io, a
# Kafka-compatible broker in Rust). Outside the test suite (building tansu takes about
# 25 minutes on a 2-core machine). Set-up, all done by this script:
#   1. cargo install tansu --features dynostore (its in-memory storage engine needs it)
#      into ~/.cache/tansu, once;
#   2. tansu broker on 127.0.0.1:29092, memory storage;
#   3. eddy kafka-check against it (which of the things Eddy needs the broker does);
#   4. an Eddy server with --kafka-bootstrap on it: a stream, an INSERT, a push query and a
#      CSAS, with what each answered.
# Usage: scripts/kafka-cluster-tansu.sh  (after `make build`; uses bin/eddy)
set -uo pipefail
cd "$(dirname "$0")/.."
TANSU_ROOT="${TANSU_ROOT:-$HOME/.cache/tansu}"
TANSU="$TANSU_ROOT/bin/tansu"
if [ ! -x "$TANSU" ]; then
  echo "== building tansu (once; about 25 minutes)"
  CARGO_TARGET_DIR="$HOME/.cache/tansu-target" cargo install tansu --locked --features dynostore --root "$TANSU_ROOT" || exit 1
fi
EDDY="${EDDY:-bin/eddy}"
WORK=$(mktemp -d)
cleanup() { kill "$TANSU_PID" "$EDDY_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
"$TANSU" broker --listener-url tcp://127.0.0.1:29092 --advertised-listener-url tcp://127.0.0.1:29092 \
  --storage-engine memory://tansu/ > "$WORK/tansu.log" 2>&1 &
TANSU_PID=$!
sleep 2
echo "== eddy kafka-check 127.0.0.1:29092"
"$EDDY" kafka-check 127.0.0.1:29092
CHECK=$?
if ! kill -0 "$TANSU_PID" 2>/dev/null; then
  echo "!! tansu stopped:"; cat "$WORK/tansu.log"; exit 1
fi
echo "== eddy server --kafka-bootstrap 127.0.0.1:29092"
"$EDDY" server --data-dir "$WORK/eddy" --http-listen 127.0.0.1:18095 --kafka-bootstrap 127.0.0.1:29092 > "$WORK/eddy.log" 2>&1 &
EDDY_PID=$!
for _ in $(seq 1 60); do curl -sf localhost:18095/healthcheck > /dev/null && break; sleep 0.5; done
ksql() { curl -s -X POST localhost:18095/ksql -H 'Content-Type: application/json' -d "{\"ksql\": \"$1\"}"; echo; }
ksql "CREATE STREAM clicks (user VARCHAR KEY, page VARCHAR) WITH (kafka_topic='clicks', partitions=2, value_format='JSON');"
ksql "INSERT INTO clicks (user, page) VALUES ('u1', '/a');"
ksql "CREATE STREAM copy AS SELECT * FROM clicks EMIT CHANGES;"
curl -s -X POST localhost:18095/query -H 'Content-Type: application/json' \
  -d '{"ksql": "SELECT * FROM clicks EMIT CHANGES LIMIT 1;", "streamsProperties": {"ksql.streams.auto.offset.reset": "earliest"}}'
echo
sleep 3
ksql "DESCRIBE copy EXTENDED;" | grep -o '"errorStats":"[^"]*"'
echo "== kafka-check exit status: $CHECK"
exit "$CHECK"
