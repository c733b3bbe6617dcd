#!/usr/bin/env bash
# Builds the web console (web/dist) from its TypeScript sources with the packages its
# lockfile pins; the server embeds web/dist when it is compiled (build.rs). Installs the
# packages only when the lockfile changed, and rebuilds only when a source did (so cargo
# does not recompile the server for nothing).
set -euo pipefail
cd "$(dirname "$0")/../web"
if ! command -v npm >/dev/null 2>&1; then
  echo "error: npm not found; scripts/ensure-system-deps.sh (run by make server and make test) installs Node.js and npm." >&2
  exit 1
fi
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "== npm ci (web console packages)"
  npm ci --no-audit --no-fund --loglevel=error
fi
if [ -f dist/index.html ] && [ -z "$(find src index.html build.mjs package-lock.json tsconfig.json -newer dist/index.html | head -1)" ]; then
  exit 0
fi
echo "== building the web console (web/dist)"
npm run --silent build
