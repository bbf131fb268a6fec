"""MNIST on disk -> verified arrays -> train/validation splits -> normalized features.

Why verify: a silently corrupted or substituted file gives a model that trains "fine" and is
wrong; the SHA-256 of each decompressed file is shipped in `checksums/mnist.sha256`. Why an
in-process cache: decoding 55 MB of gzip takes ~0.5 s and tests load MNIST many times; the
cached arrays are read-only so no caller can change what the next one sees.
"""

from __future__ import annotations

import math
import os
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import DTypeLike

from mlpkit.data import download
from mlpkit.core.arrays import input_array
from mlpkit.core.errors import ConfigError, DataError, InputError
from mlpkit.data.idx import read_idx_with_sha256

__all__ = [
    "ENV_VAR", "MNIST_FILES", "SPLITS", "Mnist", "Normalizer", "Split", "add_bias_column",
    "default_cache_dir", "load_mnist", "make_split", "mnist_checksums", "one_hot", "resolve_data_dir",
]

ENV_VAR = "MLPKIT_DATA"
#: Mnist field -> file name without ".gz" (either form is accepted on disk).
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
SPLITS = ("full", "seed")
_CHECKSUM_FILE = Path(__file__).with_name("checksums") / "mnist.sha256"
#: Loaded datasets, while anyone still holds them (a run frees the 47 MB of training images
#: once its arrays are prepared; ``reproduce`` holds them across its presets).
_CACHE: weakref.WeakValueDictionary[tuple, Mnist] = weakref.WeakValueDictionary()


@dataclass(frozen=True)
class Mnist:
    """The four MNIST arrays: images uint8 (n, 28, 28), labels uint8 (n,) in 0..9; read-only."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


@dataclass(frozen=True, kw_only=True)
class Split:
    """Named train/validation(/test) arrays; x is (n, 784), y is (n,) integer labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    name: str


@dataclass(frozen=True)
class Normalizer:
    """Standardize with one scalar mean and std over all pixels: x' = (x - mean) / std."""

    mean: float
    std: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.mean) and math.isfinite(self.std) and self.std > 0):
            raise DataError(f"cannot normalize with mean={self.mean}, std={self.std} (std must be finite and > 0)")

    @classmethod
    def fit(cls, images: np.ndarray) -> Normalizer:
        """Mean and population std (ddof=0) over every pixel, in float64.

        uint8 input is summed exactly in integers (pixel and squared-pixel sums in uint64,
        block by block, so no full-size float copy is made and no BLAS threads are woken);
        the moments are then rounded once.
        """
        images = np.asarray(images)
        if images.size == 0:
            raise DataError("cannot fit a normalizer on zero images")
        if images.dtype == np.uint8:
            flat, s1, s2 = images.reshape(-1), 0, 0
            for i in range(0, flat.size, 1 << 16):
                block = flat[i:i + (1 << 16)]
                s1 += int(block.sum(dtype=np.uint64))
                s2 += int(np.multiply(block, block, dtype=np.uint32).sum(dtype=np.uint64))
            n = flat.size
            mean, var = s1 / n, (s2 * n - s1 * s1) / (n * n)
        else:
            mean, var = float(np.mean(images, dtype=np.float64)), float(np.var(images, dtype=np.float64))
        if var == 0:
            raise DataError(f"cannot normalize: all {images.size} pixels equal {mean} (std is 0)")
        return cls(mean=float(mean), std=math.sqrt(var))

    def apply(self, images: np.ndarray, dtype: DTypeLike = np.float32, *, bias_column: bool = False) -> np.ndarray:
        """(n, ...) images -> (n, features) array of `dtype`; math in float64, in row blocks.

        ``bias_column``: (n, features + 1) with a last column of ones, written in place (no
        second full-size copy, as adding the column afterwards would make).
        """
        x = np.asarray(images)
        x = x.reshape(len(x), -1)
        d = x.shape[1]
        out = input_array(len(x), d, dtype, bias_column=bias_column)
        for i in range(0, len(x), 1024):  # float64 temporaries of 6 MB, not a full-size copy
            block = x[i:i + 1024].astype(np.float64)
            block -= self.mean
            block /= self.std
            out[i:i + 1024, :d] = block
        return out


def default_cache_dir() -> Path:
    """Per-user cache: $XDG_CACHE_HOME/mlpkit/mnist, else ~/.cache/mlpkit/mnist."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mlpkit" / "mnist"


def resolve_data_dir(explicit: str | Path | None) -> Path | None:
    """Where MNIST lives: `explicit`, else $MLPKIT_DATA, else the cache if it holds the files.

    A directory that was asked for but does not exist is an error, never a silent fallback.
    """
    for given, origin in ((explicit, "data directory"), (os.environ.get(ENV_VAR) or None, f"${ENV_VAR}")):
        if given is not None:
            path = Path(given).expanduser()
            if not path.is_dir():
                raise DataError(f"{origin} {path} does not exist or is not a directory")
            return path
    cache = default_cache_dir()
    return cache if not _missing(cache) else None


def mnist_checksums() -> dict[str, str]:
    """File name (without .gz) -> SHA-256 of its decompressed content, as shipped."""
    lines = _CHECKSUM_FILE.read_text().split("\n")
    return {name: digest for digest, name in (line.split() for line in lines if line.strip())}


def load_mnist(data_dir: str | Path | None = None, *, download: bool = True, verify: bool = True) -> Mnist:
    """Load and check the MNIST arrays (see `resolve_data_dir` for where they are looked for).

    Downloads happen only into the per-user cache, never into a directory the caller named.
    """
    directory = resolve_data_dir(data_dir)
    if directory is None:
        cache = default_cache_dir()
        if not download:
            raise DataError(f"MNIST not found: pass a data directory, set ${ENV_VAR}, "
                            f"or allow downloading into {cache}")
        _download_missing(cache)
        directory = cache
    located = {field: _locate(directory, stem) for field, stem in MNIST_FILES.items()}
    paths = {field: path for field, path in located.items() if path is not None}
    if missing := [MNIST_FILES[field] for field in located if field not in paths]:
        raise DataError(f"{directory} lacks MNIST file(s): {', '.join(missing)} (with or without .gz)")
    key = tuple((str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in paths.values())
    cached = _CACHE.get((*key, True)) or (None if verify else _CACHE.get((*key, False)))
    if cached is not None:
        return cached
    mnist = _decode(paths, verify)
    _CACHE[(*key, verify)] = mnist
    return mnist


def make_split(mnist: Mnist, name: str = "seed", *, n_train: int | None = None, n_val: int | None = None) -> Split:
    """Named splits; x is flattened to (n, 784) uint8 views of the (read-only) source arrays.

    "seed": first n_train (20,000) training images; validation = first n_val (10,000) test images.
    "full": first n_train (50,000) training images; validation = last n_val (10,000) training
    images; test = the test images.
    """
    if name not in SPLITS:
        raise ConfigError(f"unknown split {name!r}; valid splits: {', '.join(SPLITS)}")
    tr_x, tr_y = mnist.train_images.reshape(len(mnist.train_images), -1), mnist.train_labels
    te_x, te_y = mnist.test_images.reshape(len(mnist.test_images), -1), mnist.test_labels
    if name == "seed":
        n_tr, n_va = _count("n_train", n_train, 20_000, len(tr_x)), _count("n_val", n_val, 10_000, len(te_x))
        return Split(name=name, x_train=tr_x[:n_tr], y_train=tr_y[:n_tr], x_val=te_x[:n_va], y_val=te_y[:n_va])
    n_tr, n_va = _count("n_train", n_train, 50_000, len(tr_x)), _count("n_val", n_val, 10_000, len(tr_x))
    if n_tr + n_va > len(tr_x):
        raise ConfigError(f"n_train={n_tr} + n_val={n_va} exceeds the {len(tr_x)} training images (overlap)")
    return Split(name=name, x_train=tr_x[:n_tr], y_train=tr_y[:n_tr], x_val=tr_x[-n_va:], y_val=tr_y[-n_va:],
                 x_test=te_x, y_test=te_y)


def add_bias_column(x: np.ndarray) -> np.ndarray:
    """(n, d) -> (n, d + 1) with a trailing column of ones, same dtype."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise InputError(f"add_bias_column expects a 2-D array, got shape {x.shape}")
    out = input_array(x.shape[0], x.shape[1], x.dtype, bias_column=True)
    out[:, : x.shape[1]] = x
    return out


def one_hot(labels: np.ndarray, num_classes: int = 10, *, dtype: DTypeLike = np.float64) -> np.ndarray:
    """(n,) integer labels in [0, num_classes) -> (n, num_classes) indicator matrix."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"labels must be a 1-D integer array, got shape {labels.shape} dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise InputError(f"labels must lie in 0..{num_classes - 1}, got range {labels.min()}..{labels.max()}")
    out = np.zeros((labels.size, num_classes), dtype=dtype)
    out[np.arange(labels.size), labels] = 1
    return out


def _count(what: str, value: int | None, default: int, available: int) -> int:
    n = default if value is None else value
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 0 < n <= available:
        raise ConfigError(f"{what} must be an integer in 1..{available}, got {n!r}")
    return int(n)


def _locate(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _missing(directory: Path) -> list[str]:
    return [stem for stem in MNIST_FILES.values() if _locate(directory, stem) is None]


def _download_missing(cache: Path) -> None:
    checksums = mnist_checksums()
    cache.mkdir(parents=True, exist_ok=True)
    for stem in _missing(cache):
        try:
            download.fetch_file(f"{stem}.gz", cache, mirrors=download.MNIST_MIRRORS,
                                sha256_of_payload=checksums[stem])
        except DataError as exc:
            raise DataError(f"{exc}\nno MNIST copy was found locally either: give --data-dir DIR or set"
                            f" {ENV_VAR} to a folder holding the four MNIST files") from None


def _decode(paths: dict[str, Path], verify: bool) -> Mnist:
    """Read, verify checksums and cross-check the four files."""
    checksums = mnist_checksums() if verify else {}
    arrays = {}
    for field, path in sorted(paths.items(), key=lambda item: "images" in item[0]):  # small files first
        array, actual = read_idx_with_sha256(path, expect_ndim=3 if field.endswith("images") else 1)
        expected = checksums.get(MNIST_FILES[field])
        if verify and actual != expected:
            raise DataError(f"{path}: checksum mismatch: SHA-256 of the decompressed file is {actual}, "
                            f"expected {expected} (corrupt or not the original MNIST)")
        array.flags.writeable = False
        arrays[field] = array
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        ipath, lpath = paths[f"{part}_images"], paths[f"{part}_labels"]
        if images.shape[1:] != (28, 28):
            raise DataError(f"{ipath}: images are {images.shape[1]}x{images.shape[2]}, expected 28x28")
        if len(images) != len(labels):
            raise DataError(f"{ipath.name} has {len(images)} images but {lpath.name} has {len(labels)} labels")
        if labels.size and labels.max() > 9:
            raise DataError(f"{lpath}: labels must lie in 0..9, found {labels.max()}")
    return Mnist(**arrays)
