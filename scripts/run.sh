#!/usr/bin/env bash
# Set up and run the main job: live normalized Kraken data (the embedded simulator when no
# credentials are configured). Extra arguments go to `brokerbridge watch`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/brokerbridge watch "$@"
