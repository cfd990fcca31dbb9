"""Fail on an import against the layering of docs/architecture.md; print each one, then exit 1.

Four rules, over every import in src/brokerbridge (inside functions and `if TYPE_CHECKING:`
blocks too: a type-only import is still a dependency a reader and a refactoring must follow):

1. **Layers point down.** `core ◀ venues ◀ io ◀ services ◀ bridge ◀ cluster ◀ server/cli/client`: a module
   imports its own package and the ranks below, never above. Apart from the ranks:
   - `sim` may use `core` and `venues` (wire types, signing, checksum), nothing of our client
     (io, services, bridge) — its fidelity must not lean on the code it is meant to test; only
     the CLI, the server and the Bridge (`simulate=`: the Python API runs offline) may embed it.
   - `client` (the remote client, run in a bot's process without the bridge) may use `core` only.
2. **No imports within the top rank.** `server`, `cli` and `client` are three ways in to the
   bridge (a server for remote clients, a terminal, a bot's library): none is built on another.
   Three imports cross between them on purpose, and only these (`SAME_RANK_ALLOWED`):
   - `cli.serve` → `server`: the `serve` command starts the server — the CLI is the process's
     entry point and the server a library it runs (nothing in the server knows the CLI);
   - `server` → `client.models`: the REST bodies. The server encodes the very Structs
     `BridgeClient` decodes, so the two cannot disagree; they live with the client (importing
     `core` only) so that a bot installs nothing of the server to read them;
   - `cli.attach` → `client`: `watch`, `doctor`, `instruments`, `status` and `login-link` go
     through a running `serve` as its clients (one venue login for every tool), with the client a
     bot uses — through that one module.
3. **No import cycles**, between modules, of any length (`a → b → a`, `a → b → c → a`). An import
   of `pkg.mod` is an edge to that module; `from pkg import name` is an edge to `pkg/__init__.py`
   unless `name` is a submodule.
4. **`venues/` is pure**: it imports neither `time`, `asyncio` nor `socket` — wall time and `now`
   are passed in, and whatever waits or touches a socket lives in `io/`.

`--root DIR` checks another tree (a package directory; its name is the top-level package): the
tests build small trees that break each rule.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src" / "brokerbridge"
RANK = {
    "core": 0,
    "venues": 1,
    "io": 2,
    "services": 3,
    "bridge": 4,
    "cluster": 5,
    "cli": 6,
    "server": 6,
    "client": 6,
}
SIM_ALLOWED = {"core", "venues", "sim"}
SIM_USERS = {"cli", "server", "bridge"}  # who may import the simulators
# The remote client runs in a bot's process, without the bridge: normalized types only.
CLIENT_ALLOWED = {"core", "client"}
# (importing module or package, imported module or package) within the top rank: see rule 2.
SAME_RANK_ALLOWED = {("cli.serve", "server"), ("server", "client.models"), ("cli.attach", "client")}
PURE = "venues"
NOT_IN_PURE = {"time", "asyncio", "socket"}


class Import:
    __slots__ = ("line", "module", "target")

    def __init__(self, module: str, line: int, target: str) -> None:
        self.module = module  # the importing module, dotted
        self.line = line
        self.target = target  # what the statement names, dotted (absolute)


def module_name(root: Path, path: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imports_of(root: Path, path: Path, known: set[str]) -> Iterator[Import]:
    """Every import of one file, each name resolved to the module it loads where it is ours."""
    module = module_name(root, path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield Import(module, node.lineno, sub if sub in known else base)


def under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def layer_problem(top: str, imp: Import) -> str | None:
    """Why `imp` is against rules 1, 2 or 4 (None: allowed)."""
    own_parts, dep_parts = imp.module.split("."), imp.target.split(".")
    if dep_parts[0] in NOT_IN_PURE and own_parts[1:2] == [PURE]:
        return f"{PURE} is pure (text and now in, events out): it must not import {imp.target}"
    if dep_parts[0] != top or len(own_parts) < 2 or len(dep_parts) < 2:
        return None
    own, dep = own_parts[1], dep_parts[1]
    if own == dep:
        return None
    if own == "sim":
        ok = dep in SIM_ALLOWED
    elif own == "client":
        ok = dep in CLIENT_ALLOWED
    elif dep == "sim":
        ok = own in SIM_USERS
    elif own in RANK and dep in RANK and RANK[own] == RANK[dep]:
        inner_own, inner_dep = ".".join(own_parts[1:]), ".".join(dep_parts[1:])
        if any(under(inner_own, a) and under(inner_dep, b) for a, b in SAME_RANK_ALLOWED):
            return None
        return f"{own} and {dep} are of the same rank: {own} must not import {imp.target}"
    else:
        ok = RANK.get(dep, 99) <= RANK.get(own, -1)
    return None if ok else f"{own} imports {imp.target} (a layer above it)"


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each group of modules that import each other (Tarjan's strongly
    connected components, iterative: no recursion limit on a long chain)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1 or node in graph[node]:
                        found.append(_path_within(graph, set(group)))
    return found


def _path_within(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A shortest cycle through the group's first module (breadth-first inside the group)."""
    start = min(group)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt_frontier = []
        for node in frontier:
            for nxt in sorted(graph[node] & group):
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if nxt not in came_from:
                    came_from[nxt] = node
                    nxt_frontier.append(nxt)
        frontier = nxt_frontier
    return [start, start]  # pragma: no cover - a strongly connected group has a cycle through each member


def check(root: Path) -> list[str]:
    top = root.name
    files = sorted(root.rglob("*.py"))
    known = {module_name(root, path) for path in files}
    graph: dict[str, set[str]] = {name: set() for name in known}
    problems = []
    base = root.parents[1] if root == ROOT else root.parent  # src/brokerbridge/… for our own tree
    for path in files:
        shown = path.relative_to(base)
        for imp in imports_of(root, path, known):
            why = layer_problem(top, imp)
            if why is not None:
                problems.append(f"{shown}:{imp.line}: {why}")
            if imp.target in known and imp.target != imp.module:
                graph[imp.module].add(imp.target)
    for cycle in cycles(graph):
        problems.append(f"import cycle: {' → '.join(cycle)}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the package directory to check")
    root = parser.parse_args(argv).root.resolve()
    problems = check(root)
    for line in problems:
        print(line)
    if problems:
        print(f"{len(problems)} problem(s) with the layering (see docs/architecture.md)")
        return 1
    print("layering ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
