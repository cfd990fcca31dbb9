#!/usr/bin/env bash
# Set up and run every check CI runs: lint, types, import layering, the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh test
.venv/bin/ruff check src tests bench
.venv/bin/mypy
.venv/bin/python scripts/check_layers.py
.venv/bin/python -m pytest -q "$@"
