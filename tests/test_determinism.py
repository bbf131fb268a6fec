"""Determinism: with the same seed, machine and thread count two runs give bit-identical
weights and history; another seed gives different ones; the run folder records what a run
depends on beyond its config (seed, versions, BLAS, threads)."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import numpy as np
import pytest

import mlpkit
from conftest import mnist_dir  # the shared finder of real MNIST
from mlpkit.runs.config import with_overrides
from mlpkit.workflows.configs import resolve_config
from mlpkit.workflows.experiment import run_experiment
from run_files import weights_bytes

REPO = Path(__file__).resolve().parents[1]
TINY = ["n_train=600", "data.n_val=300", "epochs=2", "train.threads=1", "train.checkpoint_every=0"]


pytestmark = pytest.mark.usefixtures("mnist_path")  # fails, never skips, without MNIST (see conftest)


def train(out: Path, *overrides: str) -> Path:
    cfg = with_overrides(resolve_config("task3c"), [*TINY, *overrides])
    run_experiment(cfg, out, data_dir=mnist_dir(), progress=False)
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("determinism")
    return {"a": train(root / "a", "seed=3"), "b": train(root / "b", "seed=3"), "other": train(root / "c", "seed=4")}


def test_same_seed_gives_bit_identical_weights_and_history(runs) -> None:
    a, b = runs["a"], runs["b"]
    assert weights_bytes(a) == weights_bytes(b)
    assert (a / "history.json").read_bytes() == (b / "history.json").read_bytes()
    with np.load(a / "predictions.npz") as pa, np.load(b / "predictions.npz") as pb:
        assert all(pa[k].tobytes() == pb[k].tobytes() for k in pa.files)


def test_another_seed_gives_different_weights(runs) -> None:
    a, other = weights_bytes(runs["a"]), weights_bytes(runs["other"])
    params = [k for k in a if k != "__meta__"]
    assert params and all(a[k] != other[k] for k in params)
    assert (runs["a"] / "history.json").read_bytes() != (runs["other"] / "history.json").read_bytes()


def test_run_folder_records_seed_versions_blas_and_threads(runs) -> None:
    env = json.loads((runs["a"] / "environment.json").read_text())
    assert env["seed"] == 3 and env["threads"] == 1
    assert env["numpy"] == np.__version__ and env["mlpkit"] == mlpkit.__version__
    assert env["python"] == platform.python_version()
    assert env["blas"] and all(lib.get("internal_api") for lib in env["blas"])
    assert any(lib["internal_api"] in ("openblas", "mkl", "blis", "accelerate", "flexiblas") for lib in env["blas"])
    assert env["cpu_count"] == os.cpu_count() and env["machine"] == platform.machine()
    assert json.loads((runs["other"] / "environment.json").read_text())["seed"] == 4
    config = (runs["a"] / "config.toml").read_text()
    assert "seed = 3" in config and "threads = 1" in config
