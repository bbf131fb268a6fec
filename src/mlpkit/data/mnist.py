"""The MNIST registry: its four files, their checksums, where they are found, and loading them.

Why verify: a silently corrupted or substituted file gives a model that trains "fine" and is
wrong; the SHA-256 of each decompressed file is shipped in `checksums/mnist.sha256`. Why an
in-process cache: decoding and verifying 55 MB of gzip is not free, and tests load MNIST many times; the
cached arrays are read-only so no caller can change what the next one sees.
"""

from __future__ import annotations

import errno
import os
import stat
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlpkit.core.errors import DataError
from mlpkit.data import download
from mlpkit.data.idx import read_idx_with_sha256

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

ENV_VAR = "MLPKIT_DATA"
#: Mnist field -> file name without ".gz" (either form is accepted on disk).
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
#: Mnist field -> the shape of the original file's array (what the checksums stand for).
MNIST_SHAPES = {
    "train_images": (60_000, 28, 28),
    "train_labels": (60_000,),
    "test_images": (10_000, 28, 28),
    "test_labels": (10_000,),
}
#: Number of classes (digits 0..9).
MNIST_CLASSES = 10
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


def default_cache_dir() -> Path:
    """Per-user cache: $XDG_CACHE_HOME/mlpkit/mnist, else ~/.cache/mlpkit/mnist."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mlpkit" / "mnist"


def resolve_data_dir(explicit: str | Path | None) -> Path | None:
    """Where MNIST lives: `explicit`, else $MLPKIT_DATA, else the cache if it holds the files.

    A directory that was asked for but does not exist is an error, never a silent fallback.

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

    Parameters
    ----------
    data_dir : str, Path or None
        Folder holding the four files (each with or without ``.gz``); None: $MLPKIT_DATA,
        then the cache.
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
    directory = resolve_data_dir(data_dir)
    if directory is None:
        cache = default_cache_dir()
        if not download:
            raise DataError(
                f"MNIST not found: pass a data directory, set ${ENV_VAR}, or allow downloading into {cache}"
            )
        _download_missing(cache)
        directory = cache
    located = {field: _locate(directory, stem) for field, stem in MNIST_FILES.items()}
    paths = {field: path for field, path in located.items() if path is not None}
    if missing := [MNIST_FILES[field] for field in located if field not in paths]:
        found = [f"{p} {what}" for stem in missing for p in _candidates(directory, stem) if (what := _not_a_file(p))]
        instead = f"; found instead: {'; '.join(found)}" if found else ""
        raise DataError(f"{directory} lacks MNIST file(s): {', '.join(missing)} (with or without .gz){instead}")
    key = tuple((str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in paths.values())
    cached = _CACHE.get((*key, True)) or (None if verify else _CACHE.get((*key, False)))
    if cached is not None:
        return cached
    mnist = _decode(paths, verify)
    _CACHE[(*key, verify)] = mnist
    return mnist


def _candidates(directory: Path, stem: str) -> tuple[Path, Path]:
    return directory / stem, directory / f"{stem}.gz"


def _locate(directory: Path, stem: str) -> Path | None:
    for candidate in _candidates(directory, stem):
        if candidate.is_file():
            return candidate
    return None


def _not_a_file(path: Path) -> str | None:
    """What is at ``path`` if it exists but is not a regular file (never opened: a FIFO would block)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot be examined ({exc.strerror})"
    link = ""
    if stat.S_ISLNK(info.st_mode):
        target = os.readlink(path)
        try:
            info = os.stat(path)
        except FileNotFoundError:
            return f"is a dangling symbolic link (to {target}, which does not exist)"
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return "is a symbolic link loop"
            return f"is a symbolic link (to {target}) that cannot be followed ({exc.strerror})"
        link = f" (a symbolic link to {target})"
    kinds = [
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ]
    kind = next((name for test, name in kinds if test(info.st_mode)), None)
    return None if kind is None else f"is {kind}{link}, not a file"


def _missing(directory: Path) -> list[str]:
    return [stem for stem in MNIST_FILES.values() if _locate(directory, stem) is None]


def _download_missing(cache: Path) -> None:
    checksums = mnist_checksums()
    cache.mkdir(parents=True, exist_ok=True)
    for stem in _missing(cache):
        try:
            download.fetch_file(f"{stem}.gz", cache, mirrors=download.MNIST_MIRRORS, sha256_of_payload=checksums[stem])
        except DataError as exc:
            raise DataError(
                f"{exc}\nno MNIST copy was found locally either: give --data-dir DIR or set"
                f" {ENV_VAR} to a folder holding the four MNIST files"
            ) from None


def _decode(paths: dict[str, Path], verify: bool) -> Mnist:
    """Read, verify checksums and cross-check the four files."""
    checksums = mnist_checksums() if verify else {}
    arrays = {}
    for field, path in sorted(paths.items(), key=lambda item: "images" in item[0]):  # small files first
        # verified files must be the originals, so their shapes are known: a header that says
        # otherwise is refused before its payload is read (no gzip bomb gets to allocate)
        array, actual = read_idx_with_sha256(
            path, expect_ndim=3 if field.endswith("images") else 1, expect_shape=MNIST_SHAPES[field] if verify else None
        )
        expected = checksums.get(MNIST_FILES[field])
        if verify and actual != expected:
            raise DataError(
                f"{path}: checksum mismatch: SHA-256 of the decompressed file is {actual}, "
                f"expected {expected} (corrupt or not the original MNIST)"
            )
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
