"""MNIST by its long-standing names: the ``mnist`` entry of the IDX family, loaded as they all are.

Everything here is a thin view of `mlpkit.data.idx_specs` and `mlpkit.data.idx_datasets`
(where the files are found, how they are verified); the names stay because the training code,
the tests and users' scripts call them.
"""

from __future__ import annotations

from pathlib import Path

from mlpkit.data.idx_datasets import IdxArrays, idx_cache_dir, load_idx_arrays, resolve_idx_dir
from mlpkit.data.idx_specs import IDX_DATASETS, idx_checksums

__all__ = [
    "ENV_VAR",
    "MNIST_CLASSES",
    "MNIST_FILES",
    "MNIST_SHAPES",
    "Mnist",
    "default_cache_dir",
    "load_mnist",
    "mnist_checksums",
    "resolve_data_dir",
]

_SPEC = IDX_DATASETS["mnist"]
#: The variable naming MNIST's folder.
ENV_VAR = _SPEC.env_var
#: Mnist field -> file name without ".gz" (either form is accepted on disk).
MNIST_FILES = dict(_SPEC.files)
#: Mnist field -> the shape of the original file's array (what the checksums stand for).
MNIST_SHAPES = _SPEC.shapes
#: Number of classes (digits 0..9).
MNIST_CLASSES = _SPEC.n_classes
#: The four MNIST arrays: images uint8 (n, 28, 28), labels uint8 (n,) in 0..9; read-only.
Mnist = IdxArrays


def default_cache_dir() -> Path:
    """Per-user cache: $XDG_CACHE_HOME/mlpkit/mnist, else ~/.cache/mlpkit/mnist."""
    return idx_cache_dir("mnist")


def resolve_data_dir(explicit: str | Path | None) -> Path | None:
    """Where MNIST lives: `explicit`, else $MLPKIT_DATA, else $MLPKIT_DATA_ROOT/mnist, else the
    cache if it holds the files (see `mlpkit.data.idx_datasets.resolve_idx_dir`).

    Parameters
    ----------
    explicit : str, Path or None
        A folder the caller named (``--data-dir``), tried first.

    Returns
    -------
    Path or None
        None when nothing was named and the cache lacks a file (then `load_mnist` downloads).

    Raises
    ------
    DataError
        If the named folder (or $MLPKIT_DATA) is not a directory.
    """
    return resolve_idx_dir("mnist", explicit)


def mnist_checksums() -> dict[str, str]:
    """File name (without .gz) -> SHA-256 of its decompressed content, as shipped."""
    return idx_checksums("mnist")


def load_mnist(data_dir: str | Path | None = None, *, download: bool = True, verify: bool = True) -> Mnist:
    """Load and check the MNIST arrays (see `resolve_data_dir` for where they are looked for).

    Downloads happen only into the per-user cache, never into a directory the caller named.

    Parameters
    ----------
    data_dir : str, Path or None
        Folder holding the four files (each with or without ``.gz``); None: $MLPKIT_DATA,
        then $MLPKIT_DATA_ROOT/mnist, then the cache.
    download : bool
        Fetch missing files into the cache when no folder holds them.
    verify : bool
        Check each decompressed file's SHA-256 against the shipped checksums.

    Returns
    -------
    Mnist
        Read-only arrays, shared with every other caller that loads the same files.

    Raises
    ------
    DataError
        For a missing folder or file, a failed download, a malformed or corrupt file, a
        checksum mismatch, or files that disagree with each other.
    """
    return load_idx_arrays("mnist", data_dir, download=download, verify=verify)
