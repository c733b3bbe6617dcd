#!/usr/bin/env bash
# Installs what the test suite needs when it is missing: rustfmt and clippy (rustup),
# openssl (Debian package, for test certificates), chromium and firefox-esr (Debian
# packages: the web console's end-to-end tests drive them headless), and the Kafka
# clients it drives
# against Eddy: kcat (Debian package) and the Python packages
# kafka-python and confluent-kafka with its schema registry serdes (PyPI).
set -euo pipefail

# cargo fmt and cargo clippy check the code before the tests run.
for tool in fmt clippy; do
  if ! cargo "$tool" --version >/dev/null 2>&1; then
    component=$([ "$tool" = fmt ] && echo rustfmt || echo clippy)
    echo "Installing $component (rustup)"
    rustup component add "$component" || {
      echo "error: cargo $tool is missing and rustup could not add $component; install it and re-run." >&2
      exit 1
    }
  fi
done

# kcat drives Eddy's Kafka listener; openssl makes the certificates of the TLS tests;
# chromium and firefox-esr run the console's end-to-end tests.
for package in kcat openssl chromium firefox-esr; do
  if ! command -v "$package" >/dev/null 2>&1; then
    echo "Installing $package (apt)"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    if ! command -v apt-get >/dev/null 2>&1; then
      echo "error: apt-get not found; install $package with your package manager and re-run." >&2
      exit 1
    fi
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null 2>&1 || {
      $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
      $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
    }
  fi
done

if ! command -v python3 >/dev/null 2>&1; then
  echo "error: python3 not found; install Python 3 and re-run." >&2
  exit 1
fi
missing=()
python3 -c "import kafka" 2>/dev/null || missing+=("kafka-python>=2.1")
# The schema registry serdes (AvroSerializer, ...) need confluent-kafka's extras.
python3 -c "import confluent_kafka.schema_registry.avro, confluent_kafka.schema_registry.json_schema, confluent_kafka.schema_registry.protobuf" \
  2>/dev/null || missing+=("confluent-kafka[avro,json,protobuf,schemaregistry]")
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing Python Kafka clients: ${missing[*]}"
  python3 -m pip install -q "${missing[@]}"
fi
