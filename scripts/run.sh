#!/usr/bin/env bash
# Set up and run the main job: `brokerbridge serve` — the bridge server on the embedded Kraken and
# Primary simulators when no credentials are configured; it prints where to look (status page,
# API docs, WebSocket). Extra arguments go to `brokerbridge serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/brokerbridge serve "$@"
