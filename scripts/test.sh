#!/usr/bin/env bash
# Runs the whole test suite: formatting and lint checks (cargo fmt, line width, clippy with
# warnings as errors), unit tests beside the code and integration tests that start real
# servers on ephemeral ports. Builds once; uses cargo-nextest when installed. Then,
# when ksqlDB's functional tests (QTT and RQTT) are present in ../shared/ksql-compat, runs them with
# `eddy compat` and fails if fewer cases pass than the floor in compat-floor.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== cargo fmt --check"
cargo fmt --check
# rustfmt cannot break long string literals or macro bodies: keep every line within the
# width rustfmt.toml sets.
WIDTH=$(sed -n 's/^max_width *= *//p' rustfmt.toml)
LONG=$(find src tests fuzz/fuzz_targets -name '*.rs' -print0 | xargs -0 awk -v w="$WIDTH" 'length > w {print FILENAME ":" FNR ": " length " characters"}')
if [ -n "$LONG" ]; then
  echo "!! lines over $WIDTH characters (split them; a string literal continues after a trailing backslash):"
  echo "$LONG"
  exit 1
fi
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast "$@"
else
  cargo test --no-fail-fast "$@"
fi
COMPAT=../shared/ksql-compat
if [ -d "$COMPAT" ]; then
  cargo build --quiet --bin eddy
  FLOOR=$(tr -dc '0-9' < compat-floor.txt)
  echo "== ksqlDB compatibility: eddy compat $COMPAT (floor: $FLOOR passing cases)"
  EDDY_LOG=error "${CARGO_TARGET_DIR:-target}/debug/eddy" compat "$COMPAT" --min-passed "$FLOOR" --json target-compat.json 2>/dev/null | grep -v '^FAIL ' | tail -n 130
else
  echo "!! ../shared/ksql-compat is not here: the ksqlDB compatibility suite was NOT run"
fi
