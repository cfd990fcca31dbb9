"""Fail if an import points the wrong way: core ◀ venues ◀ io ◀ services ◀ bridge/cli; sim apart.

A module may import from its own layer and the layers below it, never above. `sim` may use
`core` and `venues` (wire types, signing, checksum) but nothing of our client (io, services,
bridge) — its fidelity must not lean on the code it is meant to test. `client` (the remote
bridge client) may use `core` only; the server may use it (its REST bodies live there).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src" / "brokerbridge"
RANK = {"core": 0, "venues": 1, "io": 2, "services": 3, "bridge": 4, "cli": 5, "server": 5, "client": 5}
SIM_ALLOWED = {"core", "venues", "sim"}
# The remote client runs in a bot's process, without the bridge: normalized types only.
CLIENT_ALLOWED = {"core", "client"}


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "brokerbridge" or len(parts) < 2:
        return None
    return parts[1]


def main() -> int:
    problems = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        own = layer_of(".".join(rel.parts))
        if own is None or own == "__init__":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            for target in targets:
                dep = layer_of(target)
                if dep is None or dep == own or dep == "__init__":
                    continue
                if own == "sim":
                    ok = dep in SIM_ALLOWED
                elif own == "client":
                    ok = dep in CLIENT_ALLOWED
                elif dep == "sim":
                    ok = own in ("cli", "server")  # the CLI embeds the simulator
                else:
                    ok = RANK.get(dep, 99) <= RANK.get(own, -1)
                if not ok:
                    problems.append(f"{path.relative_to(ROOT.parents[1])}:{node.lineno}: {own} imports {target}")
    for line in problems:
        print(line)
    if problems:
        print(f"{len(problems)} import(s) against the layering (see docs/architecture.md)")
        return 1
    print("layering ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
