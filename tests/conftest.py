"""Shared fixtures. Real MNIST comes from $MLPKIT_DATA or ../shared/data/mnist (beside the
repo), never from the network; tests that need it skip with a reason when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

# One BLAS thread for the test process: the suite's many tiny products (gradient checks,
# 20-row batches) are 10-20x slower with OpenBLAS threads spinning on a shared 2-core machine.
# Results are compared within one process, so the thread count does not change any assertion.
_BLAS_LIMIT = threadpool_limits(limits=1)

REPO_ROOT = Path(__file__).resolve().parents[1]


def mnist_dir() -> Path | None:
    env = os.environ.get("MLPKIT_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO_ROOT.parent / "shared" / "data" / "mnist")
    for c in candidates:
        if (c / "train-images-idx3-ubyte.gz").exists() or (c / "train-images-idx3-ubyte").exists():
            return c
    return None


@pytest.fixture(scope="session")
def mnist_path() -> Path:
    path = mnist_dir()
    if path is None:
        pytest.skip("real MNIST not found: set MLPKIT_DATA or place it at ../shared/data/mnist")
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
