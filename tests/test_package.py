"""The package's shape: cheap imports, the public API, and imports that point down the layers."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import mlpkit

SRC = Path(mlpkit.__file__).parent

#: What each subpackage may import (docs/architecture.md); checked for the layers below train.
MAY_IMPORT = {
    "core": set(),
    "nn": {"core"},
    "optim": {"core"},
    "data": {"core"},
    "engine": {"core", "nn", "optim"},
    "train": {"core", "nn", "optim", "data", "engine"},
}


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.parametrize(
    "module", ["mlpkit", "mlpkit.runs.config", "mlpkit.engine", "mlpkit.engine.planner", "mlpkit.train"]
)
def test_importing_the_package_does_not_import_numba(module: str) -> None:
    loaded = _run(f"import sys, {module}; print(sorted(m for m in ('numba', 'matplotlib') if m in sys.modules))")
    assert loaded == "[]", f"import {module} loaded {loaded}"


def test_the_public_api_is_reexported() -> None:
    for name in (
        "MLP",
        "SGD",
        "Trainer",
        "Callback",
        "History",
        "EarlyStopping",
        "Checkpointer",
        "ProgressBar",
        "load_mnist",
        "MlpkitError",
        "ConfigError",
        "InputError",
        "DataError",
        "CheckpointError",
        "DivergenceError",
        "__version__",
    ):
        assert name in mlpkit.__all__ and getattr(mlpkit, name) is not None
    from mlpkit.data.mnist import load_mnist
    from mlpkit.train.trainer import Trainer

    assert mlpkit.load_mnist is load_mnist and mlpkit.Trainer is Trainer


@pytest.mark.parametrize("package", ["core", "nn", "optim", "engine", "train"])
def test_every_name_in_all_resolves(package: str) -> None:
    module = importlib.import_module(f"mlpkit.{package}")
    assert module.__all__ and len(set(module.__all__)) == len(module.__all__)
    for name in module.__all__:
        assert getattr(module, name) is not None, name


# The layering itself is checked for every package in tests/test_architecture.py.


def test_callbacks_do_not_import_the_trainer() -> None:
    tree = ast.parse((SRC / "train" / "callbacks.py").read_text())
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "mlpkit.train.trainer" not in modules


def test_threadpoolctl_is_used_only_by_the_engines_thread_module() -> None:
    users = {
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if "threadpoolctl" in p.read_text() and p.parent.name in MAY_IMPORT
    }
    assert users <= {"engine/threads.py"}, users
