"""Every Python code block in README.md and docs/*.md runs as written: each is a program, run in its
own interpreter (a user's fresh shell: no BROKERBRIDGE_* settings, a private home) and must exit 0.

The line before a block may mark it:
- `<!-- docs-test: served-bridge … -->`: it talks to a `brokerbridge serve` at
  http://127.0.0.1:8000; the test runs one (Kraken only, on a free port) and points the block at it.
- `<!-- docs-test: skip (why) -->`: deliberately not a program (an interface sketch, a recipe for
  another tool); kept few (`test_only_a_few_blocks_are_not_run`).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.io.test_cli import serving

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(
    r"(?:^<!-- docs-test: (?P<mark>[\w-]+)(?P<why>[^\n]*?)-->\n)?^```python\n(?P<code>.*?)^```", re.M | re.S
)
MARKS = {"served-bridge", "skip"}
DOCUMENTED_URL = "http://127.0.0.1:8000"
TIMEOUT = 90.0  # a block that starts both simulators builds the Primary catalogue first

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@dataclass(frozen=True)
class Block:
    where: str  # file:line, the test's id
    mark: str | None
    why: str
    code: str


def blocks() -> list[Block]:
    found = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            line = text.count("\n", 0, match.start("code"))
            found.append(
                Block(
                    f"{path.relative_to(ROOT)}:{line}",
                    match["mark"],
                    (match["why"] or "").strip(),
                    match["code"],
                )
            )
    return found


def user_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BROKERBRIDGE_", "XDG_"))}
    env.update(HOME=str(home), PYTHONUNBUFFERED="1", NO_COLOR="1")
    return env


@pytest.fixture(scope="module")
def served_bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`brokerbridge serve --venue kraken` on a free port (market data open on loopback); its URL."""
    with serving("--venue", "kraken", env=user_env(tmp_path_factory.mktemp("serve-home"))) as (_, _, url):
        yield url


RUN = [b for b in blocks() if b.mark != "skip"]


@pytest.mark.parametrize("block", RUN, ids=[b.where for b in RUN])
def test_the_block_runs_as_written(block: Block, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    code = block.code
    if block.mark == "served-bridge":
        assert DOCUMENTED_URL in code, f"{block.where} is marked served-bridge but names no {DOCUMENTED_URL}"
        code = code.replace(DOCUMENTED_URL, request.getfixturevalue("served_bridge"))
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script)],
        env=user_env(tmp_path / "home"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"{block.where} failed:\n{result.stderr[-3000:]}"
    assert result.stdout.strip(), f"{block.where} printed nothing"


def test_only_a_few_blocks_are_not_run() -> None:
    found = blocks()
    assert len(found) >= 8  # README's two, python-api, client, simulator's three, architecture's sketch
    assert {b.mark for b in found} <= {None, *MARKS}
    skipped = [b for b in found if b.mark == "skip"]
    assert all(b.why for b in skipped), "a skipped block says why"
    assert len(skipped) <= 2, [b.where for b in skipped]
