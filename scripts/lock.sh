#!/usr/bin/env bash
# Rewrite uv.lock after a change to pyproject.toml (only what the change needs moves):
#   scripts/lock.sh             resolve again, keeping every pin that still fits
#   scripts/lock.sh --upgrade   take the newest release of every dependency (then run scripts/test.sh)
# Commit uv.lock with the change; scripts/test.sh fails while the two disagree.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/uv.sh lock "$@"
./scripts/setup.sh
