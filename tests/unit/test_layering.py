"""The architecture is checked, not only written down: no import circles, no module
importing another's private names, and the import-linter contracts in pyproject.toml
(textual only under gpttui/tui, tui imported by nothing else, no torch on the start-up
path) kept by the real tree and broken by a deliberate violation."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from importgraph import circles, graph

ROOT = Path(__file__).resolve().parents[2]
LINT = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")


def test_no_import_circles_and_no_private_imports():
    edges, private = graph()
    assert len(edges) > 60  # the whole package was read
    assert circles(edges) == []
    assert private == []


def test_the_graph_sees_a_circle_and_a_private_import(tmp_path, monkeypatch):
    """The checker itself can fail: a two-module package that imports itself in a circle."""
    import importgraph

    pkg = tmp_path / "gpttui"
    (pkg / "a").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a" / "__init__.py").write_text("")
    (pkg / "a" / "one.py").write_text("def f():\n    from gpttui.a.two import _hidden\n")
    (pkg / "a" / "two.py").write_text("from gpttui.a import one\n_hidden = 1\n")
    monkeypatch.setattr(importgraph, "ROOT", pkg)
    edges, private = importgraph.graph()
    assert importgraph.circles(edges) == [["gpttui.a.one", "gpttui.a.two"]]
    assert private == [("gpttui.a.one", "gpttui.a.two", "_hidden")]


def test_the_contracts_name_every_module_outside_tui():
    """A new wing or top-level module must be put under the contracts, not slip past them."""
    import pkgutil

    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    import gpttui

    top = {f"gpttui.{m.name}" for m in pkgutil.iter_modules(gpttui.__path__)} - {"gpttui.tui", "gpttui.__main__"}
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    for c in contracts[:2]:
        assert set(c["source_modules"]) == top, c["name"]


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([LINT, "--config", str(root / "pyproject.toml"), "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.skipif(LINT is None, reason="import-linter not installed (pip install -e '.[dev]')")
def test_contracts_hold_and_a_textual_import_outside_tui_breaks_them(tmp_path):
    ok = _lint(ROOT)
    assert ok.returncode == 0, ok.stdout[-2000:]
    assert "3 kept, 0 broken" in ok.stdout
    copy = tmp_path / "tree"
    shutil.copytree(ROOT / "gpttui", copy / "gpttui", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    store = copy / "gpttui" / "runs" / "store.py"
    store.write_text(store.read_text() + "\n\ndef _bad():\n    import textual  # noqa: F401\n")
    bad = _lint(copy)
    assert bad.returncode != 0
    assert "textual only under gpttui.tui BROKEN" in bad.stdout
    assert "gpttui.runs.store -> textual" in bad.stdout


def test_the_architecture_doc_names_every_module():
    doc = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    missing = []
    for path in sorted((ROOT / "gpttui").rglob("*.py")):
        if path.name in ("__init__.py", "__main__.py"):
            continue
        if f"`{path.stem}" not in doc and f"{path.stem}.py" not in doc and f"`{path.stem}`" not in doc:
            missing.append(str(path.relative_to(ROOT)))
    assert missing == []
