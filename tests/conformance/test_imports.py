"""The conformance package's modules import each other without a cycle, counting every import:
module level, inside functions, and under `if TYPE_CHECKING:` (a cycle hidden there is still a
tangle: model → steps → conversation → model made the model depend on the live side).

The repository-wide layering rules are tests/test_architecture.py's; this file only guards
toolkit/conformance.
"""
from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

import toolkit.conformance

PACKAGE = "toolkit.conformance"


def module_names(root: Path, package: str) -> dict[str, Path]:
    """Dotted name → file of every module under `root`, the package `package`."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join([package, *parts])] = path
    return names


def imported(tree: ast.AST, name: str, is_package: bool, modules: set[str]) -> set[str]:
    """Every module of `modules` that `name` imports anywhere in its source: `from X import a` is
    X.a when that is a module, else X; relative imports resolved."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                         for alias in node.names)
    return found & modules


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module → the modules of the same package it imports (not its parents: importing a module
    runs its package's __init__, but that is not this module's choice)."""
    modules = module_names(root, package)
    return {name: imported(ast.parse(path.read_text(encoding="utf-8")), name, path.name == "__init__.py",
                           set(modules)) - {name}
            for name, path in modules.items()}


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        return exc.args[1]
    return None


def test_the_conformance_package_has_no_import_cycle():
    graph = import_graph(Path(toolkit.conformance.__file__).parent, PACKAGE)
    assert f"{PACKAGE}.model" in graph and f"{PACKAGE}.checks.dtls" in graph
    assert f"{PACKAGE}.conversation" in graph[f"{PACKAGE}.steps"]  # the graph sees real edges
    found = cycle(graph)
    assert found is None, "import cycle: " + " → ".join(found)


def test_model_imports_nothing_of_the_package():
    """The bottom layer: checks as data, settings, results; everything else may import it."""
    graph = import_graph(Path(toolkit.conformance.__file__).parent, PACKAGE)
    assert graph[f"{PACKAGE}.model"] == set()


@pytest.mark.parametrize("where", ["TYPE_CHECKING", "function"])
def test_a_hidden_import_still_makes_a_cycle(tmp_path, where):
    """The finder sees imports under TYPE_CHECKING and inside functions, and relative ones."""
    root = tmp_path / "pkg"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "a.py").write_text("from pkg.b import thing\n")
    hidden = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import other\n"
              if where == "TYPE_CHECKING" else "def later():\n    from pkg import a\n")
    (root / "b.py").write_text(hidden + "thing = 1\n")
    graph = import_graph(root, "pkg")
    assert graph["pkg.a"] == {"pkg.b"} and graph["pkg.b"] == {"pkg.a"}
    assert set(cycle(graph)) == {"pkg.a", "pkg.b"}
