#!/usr/bin/env bash
# Run the whole suite against the newest release of every dependency, to find drift on purpose
# (a release that breaks us, a deprecation warning of a library) before the lock is upgraded.
# Uses its own environment (.venv-latest) and leaves uv.lock and .venv alone; pytest arguments pass on.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh test >/dev/null  # Chromium and the pinned uv
rm -rf .venv-latest
./scripts/uv.sh venv --quiet .venv-latest
./scripts/uv.sh pip install --quiet --python .venv-latest/bin/python --upgrade -e ".[test]"
echo "test-latest: versions that differ from uv.lock:" >&2
diff <(./scripts/uv.sh pip freeze --quiet --python .venv/bin/python --exclude-editable | sort) \
     <(./scripts/uv.sh pip freeze --quiet --python .venv-latest/bin/python --exclude-editable | sort) >&2 || true
.venv-latest/bin/ruff check src tests bench
.venv-latest/bin/mypy
exec .venv-latest/bin/python -m pytest -q -n "${BROKERBRIDGE_TEST_WORKERS:-2}" --dist loadfile "$@"
