"""scripts/check_layers.py: each rule fails the check on a small tree that breaks it (the script runs
as CI runs it, in a process of its own), a tree that keeps the rules passes, and our own tree has no
import cycle and no import across the top rank."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "check_layers.py"


def run(root: Path | None = None) -> tuple[int, list[str]]:
    args = [sys.executable, str(SCRIPT)] + ([] if root is None else ["--root", str(root)])
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert not done.stderr, done.stderr
    return done.returncode, done.stdout.splitlines()


def tree(tmp_path: Path, files: dict[str, str]) -> Path:
    """A package `brokerbridge` under `tmp_path` holding `files` (path → source); every directory
    on the way is a package."""
    root = tmp_path / "brokerbridge"
    for name, text in {"__init__.py": "", **files}.items():
        path = root / name
        for parent in [path.parent, *path.parent.parents]:
            if parent == root.parent:
                break
            parent.mkdir(parents=True, exist_ok=True)
            (parent / "__init__.py").touch()
        path.write_text(text, encoding="utf-8")
    return root


# What each rule allows, in one tree: down the ranks, the three crossings of the top rank that are
# meant, sim on core and venues, client on core, time in io.
ALLOWED = {
    "core/events.py": "import time\n",
    "venues/kraken/session.py": "from brokerbridge.core import events\n",
    "io/supervisor.py": "import asyncio\nfrom brokerbridge.venues.kraken import session\n",
    "bridge.py": "from brokerbridge.io.supervisor import *\n",
    "client/models.py": "from brokerbridge.core.events import *\n",
    "server/rest.py": "from brokerbridge.bridge import *\nfrom brokerbridge.client import models\n",
    "cli/serve.py": "from brokerbridge.server.rest import *\n",
    "cli/sim.py": "from brokerbridge.sim import kraken\n",
    "cli/attach.py": "from brokerbridge.client.models import *\n",
    "sim/kraken.py": "from brokerbridge.venues.kraken.session import *\n",
}


def test_a_tree_that_keeps_the_rules_passes(tmp_path: Path) -> None:
    assert run(tree(tmp_path, ALLOWED)) == (0, ["layering ok"])


@pytest.mark.parametrize(
    "files",
    [
        {  # three modules, each importing the next
            "core/a.py": "from brokerbridge.core import b\n",
            "core/b.py": "from brokerbridge.core.c import thing\n",
            "core/c.py": "import brokerbridge.core.a\n",
        },
        {  # two, one of them only for type checking (hub ↔ ws, as it was)
            "server/hub.py": "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from brokerbridge.server.ws import Client\n",
            "server/ws.py": "from brokerbridge.server.hub import Hub\n",
        },
        {  # through a package's __init__ (a name it re-exports)
            "server/__init__.py": "from brokerbridge.server.runner import Server\n",
            "server/runner.py": "from brokerbridge.server.app import create\n",
            "server/app.py": "from brokerbridge.server import Server\n",
        },
        {  # relative imports resolve too
            "io/x.py": "from . import y\n",
            "io/y.py": "from .x import z\n",
        },
    ],
    ids=["three", "type-only", "package-init", "relative"],
)
def test_an_import_cycle_fails(tmp_path: Path, files: dict[str, str]) -> None:
    code, lines = run(tree(tmp_path, {**ALLOWED, **files}))
    assert code == 1
    (cycle,) = [line for line in lines if line.startswith("import cycle: ")]
    path = cycle.removeprefix("import cycle: ").split(" → ")
    assert path[0] == path[-1] and len(path) == len(files) + 1
    assert {module.removeprefix("brokerbridge.") for module in path} == {
        name.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for name in files
    }


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("server/rest.py", "from brokerbridge.cli import common\n"),
        ("cli/watch.py", "from brokerbridge.server.ws import WsSettings\n"),  # only serve runs the server
        ("server/app.py", "from brokerbridge.client.client import BridgeClient\n"),  # models only
        ("cli/common.py", "def f() -> None:\n    import brokerbridge.client\n"),  # only cli/attach.py
    ],
)
def test_an_import_within_the_top_rank_fails(tmp_path: Path, name: str, text: str) -> None:
    code, lines = run(tree(tmp_path, {**ALLOWED, name: text}))
    assert code == 1
    assert any(line.startswith(f"brokerbridge/{name}:") and "same rank" in line for line in lines), lines


@pytest.mark.parametrize(
    "text",
    ["import time\n", "from time import monotonic\n", "import asyncio\n", "from asyncio import sleep\n"],
)
def test_venues_importing_time_or_asyncio_fails(tmp_path: Path, text: str) -> None:
    code, lines = run(tree(tmp_path, {**ALLOWED, "venues/primary/session.py": text}))
    assert code == 1
    (line,) = [line for line in lines if line.startswith("brokerbridge/venues/primary/session.py:1:")]
    assert "venues is pure" in line


def test_an_import_up_the_ranks_still_fails(tmp_path: Path) -> None:
    code, lines = run(tree(tmp_path, {**ALLOWED, "services/x.py": "from brokerbridge import bridge\n"}))
    assert code == 1
    assert any(
        line.startswith("brokerbridge/services/x.py:1: services imports brokerbridge.bridge")
        for line in lines
    )


def test_our_tree_has_no_import_cycle_and_no_import_across_the_top_rank() -> None:
    _, lines = run()
    assert not [line for line in lines if "import cycle" in line or "same rank" in line]
