"""gpttui's import graph, read from the source with `ast` (nothing is imported).

Edges are "module A imports module B" for every `import`/`from ... import` naming a gpttui
module, at module level or inside a function (a lazy import still ties the two modules
together), except under `if TYPE_CHECKING:`. `python tests/unit/importgraph.py` prints the
graph and any circles.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "gpttui"


def modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports_of(path: Path, known: set[str]) -> set[tuple[str, str]]:
    """(imported module, private name or "") for each gpttui import in the file."""
    found: set[tuple[str, str]] = set()
    skip: set[int] = set()
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if _is_type_checking(node):
            skip.update(id(n) for n in ast.walk(node))
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "gpttui":
                    found.add((_owner(a.name, known), ""))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "gpttui":
                continue
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                if sub in known:
                    found.add((sub, ""))
                else:
                    private = a.name if a.name.startswith("_") and not a.name.startswith("__") else ""
                    found.add((_owner(node.module, known), private))
    return found


def _owner(name: str, known: set[str]) -> str:
    while name not in known and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def graph() -> tuple[dict[str, set[str]], list[tuple[str, str, str]]]:
    """The edges (packages' __init__ edges included) and every private-name import."""
    mods = modules()
    known = set(mods)
    edges: dict[str, set[str]] = {m: set() for m in mods}
    private = []
    for m, path in mods.items():
        for target, name in imports_of(path, known):
            if target != m:
                edges[m].add(target)
            if name:
                private.append((m, target, name))
    return edges, private


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


if __name__ == "__main__":
    edges, private = graph()
    for m in sorted(edges):
        print(f"{m}: {', '.join(sorted(edges[m])) or '-'}")
    print("circles:", circles(edges) or "none")
    print("private imports:", private or "none")
