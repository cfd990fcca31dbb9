"""What brokerbridge says to its users (errors, remedies, log lines, wire messages, the dashboard)
cites no file of the source tree: a user who installed with pip has no `docs/configuration.md`.
The fix is said inline, and where more is needed the text names `brokerbridge <command> --help`.

Docstrings and comments are for readers of the source and may cite anything; every other string
constant in src/ (f-string parts included) and every dashboard file is checked.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "brokerbridge"
# A path of the source tree: docs/…, a markdown file, the scripts or the tests.
CITATION = re.compile(r"(?<![\w/])(?:docs|scripts|tests|bench)/[\w./-]+|\b[\w-]+\.md\b")


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _citations_in_python(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _docstrings(tree)
    return [
        f"{path.relative_to(SRC)}:{node.lineno}: {match.group(0)!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
        for match in CITATION.finditer(node.value)
    ]


def test_no_user_facing_text_cites_a_file_of_the_source_tree() -> None:
    found = [hit for path in sorted(SRC.rglob("*.py")) for hit in _citations_in_python(path)]
    for path in sorted((SRC / "server" / "static").rglob("*")):
        if path.suffix in (".js", ".html", ".css"):
            text = path.read_text(encoding="utf-8")
            found += [f"{path.relative_to(SRC)}: {m.group(0)!r}" for m in CITATION.finditer(text)]
    assert found == []
