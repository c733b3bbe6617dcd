#!/usr/bin/env bash
# Installs the Kafka clients the test suite drives against Eddy, when they are missing:
# kcat (Debian package) and the Python packages kafka-python and confluent-kafka (PyPI).
set -euo pipefail

if ! command -v kcat >/dev/null 2>&1; then
  echo "Installing kcat (apt)"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: apt-get not found; install kcat with your package manager and re-run." >&2
    exit 1
  fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat >/dev/null 2>&1 || {
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat >/dev/null
  }
fi

if ! command -v python3 >/dev/null 2>&1; then
  echo "error: python3 not found; install Python 3 and re-run." >&2
  exit 1
fi
missing=()
python3 -c "import kafka" 2>/dev/null || missing+=("kafka-python>=2.1")
python3 -c "import confluent_kafka" 2>/dev/null || missing+=("confluent-kafka")
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing Python Kafka clients: ${missing[*]}"
  python3 -m pip install -q "${missing[@]}"
fi
