#!/usr/bin/env bash
# Runs the whole test suite: unit tests beside the code and integration tests that start
# real servers on ephemeral ports. Builds once; uses cargo-nextest when installed.
set -euo pipefail
cd "$(dirname "$0")/.."
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast "$@"
else
  cargo test --no-fail-fast "$@"
fi
