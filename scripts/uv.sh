#!/usr/bin/env bash
# Run the pinned uv with the given arguments, installing it first (with pip, into .venv-uv/) when it
# is missing or another version, so a fresh machine needs nothing but python3. Never downloads an
# interpreter: uv uses $PYTHON (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.9
PY=${PYTHON:-python3}
uv=.venv-uv/bin/uv
if [[ ! -x $uv ]] || [[ $("$uv" --version) != "uv $UV_VERSION"* ]]; then
  rm -rf .venv-uv
  "$PY" -m venv .venv-uv
  .venv-uv/bin/python -m pip install -qq "uv==$UV_VERSION"
fi
# Bytecode compiled at install: with PYTHONDONTWRITEBYTECODE set (as on CI machines) every process
# would otherwise compile every module it imports again — seconds per command and per test subprocess.
export UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=.venv UV_PYTHON=$PY UV_COMPILE_BYTECODE=1
exec "$uv" "$@"
