#!/usr/bin/env bash
# Create .venv (Python ≥ 3.11) with exactly what uv.lock pins; quick when nothing changed.
#   scripts/setup.sh        the package and what it needs to run (scripts/run.sh)
#   scripts/setup.sh test   also the test tools, plus Debian's Chromium + fonts for the browser tests
# The lock is uv's (uv.lock, one resolution for every platform and Python ≥ 3.11); uv itself is pinned
# in scripts/uv.sh and installed with pip into .venv-uv/, so a fresh machine needs nothing but python3.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
what=${1:-run}

if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "brokerbridge needs Python ≥ 3.11; '$PY' is $("$PY" -V 2>&1). Run with PYTHON=/path/to/python3.11 $0" >&2
  exit 2
fi

if [[ $what == test && ! -x /usr/bin/redis-server ]]; then
  # The cluster tests (tests/cluster) start their own redis-server on a free port (no mocks of Redis).
  if [[ $(id -u) -ne 0 ]]; then
    echo "redis-server is missing for the cluster tests: run  sudo apt-get install -y --no-install-recommends redis-server  then run this again." >&2
    exit 2
  fi
  echo "setup: installing Debian's redis-server (apt-get)…" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null
fi

if [[ $what == test && ! -x /usr/bin/chromium ]]; then
  # The dashboard tests drive Debian's Chromium (Playwright downloads no browser here).
  if [[ $(id -u) -ne 0 ]]; then
    echo "Chromium is missing for the browser tests: run  sudo apt-get install -y --no-install-recommends chromium fonts-dejavu-core fonts-liberation  then run this again." >&2
    exit 2
  fi
  echo "setup: installing Debian's chromium and fonts (apt-get)…" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    chromium fonts-dejavu-core fonts-liberation >/dev/null
fi

if [[ $what == test ]]; then
  # The JavaScript client's tests (tests/js) run `node --test`; they need Node.js ≥ 20.10 (WebSocket:
  # behind --experimental-websocket before 22). Debian's nodejs when there is no node at all.
  if ! command -v node >/dev/null; then
    if [[ $(id -u) -ne 0 ]]; then
      echo "Node.js is missing for the JavaScript client's tests: run  sudo apt-get install -y nodejs  then run this again." >&2
      exit 2
    fi
    echo "setup: installing Debian's nodejs and npm (apt-get)…" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  fi
  node_version=$(node --version)
  IFS=. read -r node_major node_minor _ <<<"${node_version#v}"
  if (( node_major < 20 || (node_major == 20 && node_minor < 10) )); then
    # Not fatal: every other test runs; tests/js fails with this same explanation.
    echo "WARNING: node $node_version is too old for the JavaScript client's tests (tests/js): they need" \
      "Node.js ≥ 20.10 (Debian 13's nodejs is 20.19; Debian 12's is 18). Install a newer Node.js." >&2
  fi
  # TypeScript, locked in tests/js/package-lock.json, checks the client's declarations (tsc --noEmit).
  if [[ tests/js/package-lock.json -nt tests/js/node_modules/.package-lock.json ]]; then
    if ! command -v npm >/dev/null; then
      echo "npm is missing (Debian splits it from nodejs): run  apt-get install -y npm  then run this again." >&2
      exit 2
    fi
    npm ci --prefix tests/js --no-audit --no-fund --loglevel=error >/dev/null
  fi
fi

if ! ./scripts/uv.sh lock --check --quiet; then
  echo "uv.lock disagrees with pyproject.toml: run  ./scripts/lock.sh  (then commit uv.lock)" >&2
  exit 1
fi
# The project goes in editable; --locked: install exactly the lock, never re-resolve.
sync=(./scripts/uv.sh sync --locked --quiet)
if [[ $what == test ]]; then
  "${sync[@]}" --extra test            # exact: what the lock says for tests, nothing else
else
  "${sync[@]}" --inexact               # keeps test tools a developer already has in .venv
fi
# Our own modules too (the editable install is not compiled by uv); stale files are recompiled in memory.
.venv/bin/python -m compileall -q -j 0 src >/dev/null
