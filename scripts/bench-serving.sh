#!/usr/bin/env bash
# Serving benchmark (issue 4): pull-query key lookups and 100-key feature lookups against a
# release server with wrk, in the same run as redis-benchmark GET against a local Redis,
# plus the time from start to serving for a large table. Redis runs first; when oha is
# installed, a last run holds pull queries at half of Redis's measured GET rate on 64
# connections (open loop) and reports their latency: the target is p99 < 1 ms there.
# Last, the same wrk runs against a C server that does no work (the floor this machine and
# load tool allow), when a C compiler is installed.
#
#   scripts/bench-serving.sh [KEYS] [DURATION_S] [STARTUP_DIR]
#
# KEYS (default 100000) rows are loaded into a source table FEATURES. STARTUP_DIR, when
# given, is a data directory with a table STATS keyed by user_id 'u0'.. (for example from
# `eddy bench agg --records 10000000 --keys 10000000 --dir DIR`); the script times a
# server start on it until the first pull query answers.
set -euo pipefail
KEYS=${1:-100000}
DUR=${2:-20}
STARTUP_DIR=${3:-}
cd "$(dirname "$0")/.."
command -v wrk >/dev/null && command -v redis-server >/dev/null || {
  echo "installing wrk and redis (apt)"; sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd=sudo
  $sudo_cmd apt-get install -y wrk redis-server redis-tools >/dev/null
}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/eddy-target}
cargo build --release --quiet
EDDY=$CARGO_TARGET_DIR/release/eddy
echo "== machine: $(nproc) cores, $(grep 'model name' /proc/cpuinfo | head -1 | cut -d: -f2 | xargs)"
echo "== redis GET, redis-benchmark 64 connections, $KEYS keys"
redis-server --port 6399 --save '' --appendonly no --daemonize yes >/dev/null
until redis-cli -p 6399 ping >/dev/null 2>&1; do sleep 0.1; done
redis-benchmark -p 6399 -t set -n "$KEYS" -r "$KEYS" -q >/dev/null
echo '"test","rps","avg_ms","min_ms","p50_ms","p95_ms","p99_ms","max_ms"'
REDIS=$(redis-benchmark -p 6399 -t get -c 64 -n 2000000 -r "$KEYS" --csv 2>/dev/null | tail -1)
echo "$REDIS"
# The 100-key feature lookup's counterpart: MGET of 100 random keys.
MGET_ARGS=$(for _ in $(seq 100); do printf 'key:__rand_int__ '; done)
for C in 8 64; do
  echo "== redis MGET of 100 random keys, redis-benchmark $C connections (rps, avg, min, p50, p95, p99, max ms)"
  # shellcheck disable=SC2086
  redis-benchmark -p 6399 -c $C -n 200000 -r "$KEYS" --csv MGET $MGET_ARGS 2>/dev/null | tail -1 | cut -d, -f2-
done
redis-cli -p 6399 shutdown nosave >/dev/null 2>&1 || true
REDIS_RPS=$(echo "$REDIS" | cut -d, -f2 | tr -d '"' | cut -d. -f1)
PORT=18099
DATA=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; redis-cli -p 6399 shutdown nosave >/dev/null 2>&1 || true; rm -rf "$DATA"' EXIT
EDDY_LOG=warn $EDDY server --data-dir "$DATA" --http-listen 127.0.0.1:$PORT >/dev/null &
SERVER=$!
until curl -sf localhost:$PORT/healthcheck >/dev/null; do sleep 0.1; done
ksql() { curl -sf -XPOST localhost:$PORT/ksql -H 'content-type: application/json' -d "{\"ksql\": \"$1\"}" >/dev/null; }
ksql "CREATE TABLE features (id VARCHAR PRIMARY KEY, views BIGINT, avg_dwell DOUBLE, last_page VARCHAR) WITH (kafka_topic='features', value_format='JSON', partitions=3);"
python3 - "$PORT" "$KEYS" <<'PY'
import json, sys, urllib.request
port, keys = sys.argv[1], int(sys.argv[2])
for start in range(0, keys, 5000):
    recs = [{"key": f"k{i}", "value": {"views": i, "avg_dwell": i / 7, "last_page": f"p{i % 50}"}} for i in range(start, min(keys, start + 5000))]
    req = urllib.request.Request(f"http://127.0.0.1:{port}/topics/features/records", json.dumps({"records": recs}).encode(), {"content-type": "application/json"})
    urllib.request.urlopen(req).read()
PY
until curl -sf -XPOST localhost:$PORT/features/features -d "{\"keys\":[\"k$((KEYS-1))\"]}" | grep -q '"row"'; do sleep 0.2; done
# Steady state, as Redis's keys are: every key looked up once before measuring (the first
# lookup of a key reads RocksDB and keeps the row in memory).
echo "== warm-up, not measured: pull queries for 5s"
KEYS=$KEYS wrk -t1 -c64 -d5s -s scripts/bench/pull.lua http://127.0.0.1:$PORT >/dev/null
echo "== eddy pull query (POST /query, one random key of $KEYS), wrk 1 thread (as redis-benchmark), 64 connections, ${DUR}s"
KEYS=$KEYS wrk -t1 -c64 -d${DUR}s --latency -s scripts/bench/pull.lua http://127.0.0.1:$PORT | grep -E "Latency|50%|90%|99%|Requests/sec|Non-2xx"
echo "== eddy pull query, wrk 2 threads, 64 connections, ${DUR}s"
KEYS=$KEYS wrk -t2 -c64 -d${DUR}s --latency -s scripts/bench/pull.lua http://127.0.0.1:$PORT | grep -E "Latency|50%|90%|99%|Requests/sec|Non-2xx"
echo "== eddy feature lookup (POST /features, 100 random keys), wrk 2 threads, 8 connections, ${DUR}s"
KEYS=$KEYS BATCH=100 wrk -t2 -c8 -d${DUR}s --latency -s scripts/bench/features.lua http://127.0.0.1:$PORT | grep -E "Latency|50%|90%|99%|Requests/sec|Non-2xx"
echo "== eddy feature lookup (POST /features, 100 random keys), wrk 2 threads, 64 connections, ${DUR}s"
KEYS=$KEYS BATCH=100 wrk -t2 -c64 -d${DUR}s --latency -s scripts/bench/features.lua http://127.0.0.1:$PORT | grep -E "Latency|50%|90%|99%|Requests/sec|Non-2xx"
echo "== eddy feature lookup (POST /features, 1 random key), wrk 1 thread, 64 connections, ${DUR}s"
KEYS=$KEYS BATCH=1 wrk -t1 -c64 -d${DUR}s --latency -s scripts/bench/features.lua http://127.0.0.1:$PORT | grep -E "Latency|50%|90%|99%|Requests/sec|Non-2xx"
echo "== eddy pull query, wrk 1 thread, 8 connections, ${DUR}s"
KEYS=$KEYS wrk -t1 -c8 -d${DUR}s --latency -s scripts/bench/pull.lua http://127.0.0.1:$PORT | grep -E "Latency|50%|90%|99%|Requests/sec|Non-2xx"
if command -v oha >/dev/null; then
  # Latency at a fixed request rate (open loop) rather than at saturation.
  BODIES=$(mktemp)
  python3 -c "
import random, sys
for _ in range(200000):
    print('{\"ksql\":\"SELECT * FROM FEATURES WHERE ID = \'k%d\';\"}' % random.randrange(int(sys.argv[1])))" "$KEYS" > "$BODIES"
  for RATE in 20000 $((REDIS_RPS / 2)); do
    echo "== eddy pull query at a fixed $RATE requests/s (Redis GET: $REDIS_RPS/s), oha 64 connections, ${DUR}s"
    oha -c 64 -q $RATE -z ${DUR}s --no-tui -m POST -T application/json -Z "$BODIES" http://127.0.0.1:$PORT/query | grep -E "Success rate|Requests/sec|50.00%|90.00%|99.00%|99.90%"
  done
  rm -f "$BODIES"
else
  echo "(oha not installed: 'cargo install oha --locked' adds the fixed-rate latency runs)"
fi
kill $SERVER; wait $SERVER 2>/dev/null || true
# The floor: the same wrk runs against a server that does no work at all.
if command -v cc >/dev/null; then
  FLOOR=$(mktemp -d)
  cc -O2 -o "$FLOOR/floor_server" scripts/bench/floor_server.c
  "$FLOOR/floor_server" 18111 &
  FLOOR_PID=$!
  sleep 0.3
  for T in 1 2; do
    echo "== floor: a C server that answers every request with a fixed response (scripts/bench/floor_server.c), wrk $T thread(s), 64 connections, ${DUR}s"
    KEYS=$KEYS wrk -t$T -c64 -d${DUR}s --latency -s scripts/bench/pull.lua http://127.0.0.1:18111 | grep -E "Latency|50%|90%|99%|Requests/sec"
  done
  if command -v oha >/dev/null; then
    for RATE in 20000 $((REDIS_RPS / 2)); do
      echo "== floor at a fixed $RATE requests/s, oha 64 connections, ${DUR}s"
      oha -c 64 -q $RATE -z ${DUR}s --no-tui -m POST -T application/json -d '{"ksql":"SELECT * FROM FEATURES WHERE ID = '"'"'k1'"'"';"}' http://127.0.0.1:18111/query | grep -E "Success rate|Requests/sec|50.00%|90.00%|99.00%|99.90%"
    done
  fi
  kill $FLOOR_PID; wait $FLOOR_PID 2>/dev/null || true
  rm -rf "$FLOOR"
else
  echo "(no C compiler: the floor runs against scripts/bench/floor_server.c are skipped)"
fi
if [ -n "$STARTUP_DIR" ]; then
  echo "== start to serving on $STARTUP_DIR"
  t0=$(date +%s.%N)
  EDDY_LOG=warn $EDDY server --data-dir "$STARTUP_DIR" --http-listen 127.0.0.1:$PORT >/dev/null &
  SERVER=$!
  until curl -sf -XPOST localhost:$PORT/query -d '{"ksql":"SELECT * FROM stats WHERE user_id = '"'"'u4242'"'"';"}' 2>/dev/null | grep -q '"row"'; do sleep 0.01; done
  t1=$(date +%s.%N)
  echo "first pull query answered $(python3 -c "print(round($t1 - $t0, 3))") s after start"
fi
