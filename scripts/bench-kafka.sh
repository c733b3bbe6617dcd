#!/usr/bin/env bash
# Kafka-client benchmark (issue 5): produce and consume throughput and end-to-end latency
# with confluent-kafka (librdkafka) against a release server on a fresh data directory.
#
#   scripts/bench-kafka.sh [RECORDS] [RECORD_BYTES] [FLUSH]
#
# FLUSH is the server's default topic durability (always, interval, never; default always).
set -euo pipefail
RECORDS=${1:-2000000}
SIZE=${2:-100}
FLUSH=${3:-always}
cd "$(dirname "$0")/.."
scripts/ensure-test-tools.sh
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/eddy-target}
cargo build --release --quiet
EDDY=$CARGO_TARGET_DIR/release/eddy
DATA=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -rf "$DATA"' EXIT
EDDY_LOG=warn $EDDY server --data-dir "$DATA" --http-listen 127.0.0.1:0 --kafka-listen 127.0.0.1:19093 --flush "$FLUSH" >/dev/null &
SERVER=$!
until python3 -c "import socket; socket.create_connection(('127.0.0.1', 19093))" 2>/dev/null; do sleep 0.1; done
echo "== machine: $(nproc) cores, $(grep 'model name' /proc/cpuinfo | head -1 | cut -d: -f2 | xargs); flush=$FLUSH"
python3 scripts/bench/kafka_clients.py 127.0.0.1:19093 "$RECORDS" "$SIZE" 3 | tee /tmp/eddy-bench-kafka.out
TOPIC=$(sed -n 's/^topic: //p' /tmp/eddy-bench-kafka.out)
t0=$(date +%s.%N)
N=$(kcat -b 127.0.0.1:19093 -C -t "$TOPIC" -o beginning -e -q -f '\n' -X fetch.max.bytes=52428800 | wc -l)
t1=$(date +%s.%N)
python3 -c "import sys; n, s = int(sys.argv[1]), float(sys.argv[3]) - float(sys.argv[2]); print(f'consume (kcat, C): {n} records: {s:.2f} s = {n / s:,.0f} records/s (including start-up)')" "$N" "$t0" "$t1"
