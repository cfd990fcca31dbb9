#!/usr/bin/env bash
# Set up everything the tests need (locked dependencies — setup fails when uv.lock disagrees with
# pyproject.toml —, Debian's Chromium) and run every check CI runs: lint, strict types, import
# layering, the whole suite.
#   scripts/test.sh [pytest args]   the whole suite (what CI runs), e.g. scripts/test.sh tests/server
#   scripts/test.sh --fast          the edit-loop tier: pure venue code and sessions, unit, options, server (no
#                                   browser, chaos, third-party clients, bench — tests marked `slow`)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh test
.venv/bin/ruff check src tests bench
.venv/bin/mypy
.venv/bin/python scripts/check_layers.py
args=("$@")
if [[ ${1:-} == --fast ]]; then
  args=(-m "not slow" --dist load tests/unit tests/options tests/sessions tests/server "${@:2}")
fi
# Three workers on this 2-core box, a test file per worker (module fixtures such as simulators and
# the browser stay together): the suite mostly waits on sockets and child processes (two workers kept
# the cores 105 % busy, 734 s; three 143 %, 584 s); BROKERBRIDGE_TEST_WORKERS=0 runs in one process.
exec .venv/bin/python -m pytest -q -n "${BROKERBRIDGE_TEST_WORKERS:-3}" --dist loadfile --durations=15 "${args[@]}"
