"""The layering of docs/architecture.md, checked on the source: every import of an mlpkit module
(at module level, inside functions, or under TYPE_CHECKING) points down the table, no two
modules import each other (directly or through a chain), and no module outgrows ~400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "mlpkit"

#: package -> the packages it may import (besides itself); see docs/architecture.md
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "nn": {"core"},
    "optim": {"core"},
    "data": {"core"},
    "engine": {"core", "nn", "optim"},
    "train": {"core", "nn", "optim", "data", "engine"},
    "runs": {"core", "nn", "optim", "data", "engine", "train"},
    "report": {"core", "nn", "optim", "data", "engine", "train", "runs"},
    "seed": {"core", "nn", "optim", "data", "engine", "train", "runs", "report"},
    "workflows": {"core", "nn", "optim", "data", "engine", "train", "runs", "report", "seed"},
    # an adapter at the edge (scikit-learn's estimator): nothing imports it
    "adapters": {"core", "nn", "optim", "data", "engine", "train", "runs"},
    # the web app of mlpkit serve: everything but the CLI that starts it and the adapters
    "web": {"core", "nn", "optim", "data", "engine", "train", "runs", "report", "seed", "workflows"},
}
MAX_LINES = 420


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Every mlpkit module ``path`` imports, resolved to a module (``from a.b import c`` gives
    ``a.b.c`` when that is a module, else ``a.b``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    this = module_name(path)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "mlpkit")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] != "mlpkit":
                continue
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in MODULES else base)
    found.discard(this)
    return found


FILES = sorted(SRC.rglob("*.py"))
MODULES = {module_name(p): p for p in FILES}


def layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None  # None: the top-level facade mlpkit/__init__


@pytest.mark.parametrize("path", FILES, ids=lambda p: module_name(p))
def test_imports_point_down_the_layers(path):
    here = layer(module_name(path))
    if here in (None, "cli", "__main__"):
        return  # the facade re-exports the public API; the CLI and its entry point wire everything
    assert here in ALLOWED, f"{module_name(path)}: package {here!r} is not in docs/architecture.md"
    wrong = sorted(
        m for m in imported_modules(path) if layer(m) != here and (layer(m) is None or layer(m) not in ALLOWED[here])
    )
    assert wrong == [], f"{module_name(path)} imports {wrong} (layer {here} may import {sorted(ALLOWED[here])})"


def test_no_import_cycles_between_modules():
    graph = {
        m: {d for d in imported_modules(p) if d in MODULES and not d.endswith("mlpkit")} for m, p in MODULES.items()
    }
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, ()):
            if MODULES[nxt].name == "__init__.py" and node.startswith(nxt + "."):
                continue  # a module importing its own package's __init__ is not a cycle of concepts
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt] if nxt in stack else [node, nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for m in graph:
        if m not in state:
            visit(m, [m])
    assert cycles == [], f"import cycles: {cycles}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: module_name(p))
def test_modules_stay_small(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{module_name(path)} has {lines} lines (split it by concept)"
