#!/usr/bin/env bash
# Set up and run every check CI runs: lint, types, import layering, the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh test
.venv/bin/ruff check src tests bench
.venv/bin/mypy
.venv/bin/python scripts/check_layers.py
# Two workers, a test file per worker (module fixtures such as simulators and the browser stay
# together); BROKERBRIDGE_TEST_WORKERS=0 runs in one process.
.venv/bin/python -m pytest -q -n "${BROKERBRIDGE_TEST_WORKERS:-2}" --dist loadfile "$@"
