"""Shared fixtures.

Real MNIST is found the way the CLI finds it: ``$MLPKIT_DATA``, then the user cache, else a
verified download into the cache. Tests that need it (those using the ``mnist_path`` fixture,
marked ``mnist`` automatically) FAIL with a message saying how to provide it when it cannot be
had: a missing data set must never turn into a green run that tested less. To run the offline
subset on purpose, deselect them: ``python -m pytest -m "not mnist"``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

# One BLAS thread for the test process: the suite's many tiny products (gradient checks,
# 20-row batches) are 10-20x slower with OpenBLAS threads spinning on a shared 2-core machine.
# Results are compared within one process, so the thread count does not change any assertion.
_BLAS_LIMIT = threadpool_limits(limits=1)

REPO_ROOT = Path(__file__).resolve().parents[1]

MNIST_HELP = (
    "this test needs the real MNIST data set. Provide it with MLPKIT_DATA=DIR (a folder holding the four"
    " MNIST files, e.g. the team's offline copy), or let mlpkit download and verify it into the user cache"
    " (`mlpkit data download`, needs network); or deselect the MNIST tests on purpose: python -m pytest -m 'not mnist'"
)


@functools.lru_cache(maxsize=1)
def find_mnist() -> tuple[Path | None, str]:
    """(folder with verified MNIST files, "") or (None, why not), looked up once per session."""
    from mlpkit.core.errors import MlpkitError
    from mlpkit.data.mnist import default_cache_dir, load_mnist, resolve_data_dir

    try:
        directory = resolve_data_dir(None)
        load_mnist(directory, download=directory is None, verify=True)
        return (directory or default_cache_dir()), ""
    except MlpkitError as exc:
        return None, str(exc)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test that uses real MNIST carries the ``mnist`` marker (so ``-m 'not mnist'`` works)."""
    for item in items:
        if "mnist_path" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.mnist)


@pytest.fixture(scope="session")
def mnist_path() -> Path:
    path, why = find_mnist()
    if path is None:
        pytest.fail(f"real MNIST not available ({why}): {MNIST_HELP}", pytrace=False)
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def mnist_dir() -> Path | None:
    """The MNIST folder, or None (prefer the ``mnist_path`` fixture, which fails when it is missing)."""
    return find_mnist()[0]
