"""Loading the IDX family of data sets (MNIST, Fashion-MNIST, KMNIST; see `mlpkit.data.idx_specs`).

Why verify: a corrupt or substituted file gives a model that trains "fine" and is wrong. Why an
in-process cache: decoding and verifying tens of MB of gzip is not free and tests load the same
files many times; the cached arrays are read-only so no caller can change what the next one sees.

Where a data set's folder is found (first match wins):

1. the ``data_dir`` argument (``--data-dir`` on the command line);
2. the data set's own variable: ``MLPKIT_DATA`` (MNIST), ``MLPKIT_DATA_FASHION_MNIST``,
   ``MLPKIT_DATA_KMNIST``;
3. ``$MLPKIT_DATA_ROOT/<name>/`` (e.g. ``$MLPKIT_DATA_ROOT/fashion-mnist``) when that variable is set;
4. the per-user cache ``$XDG_CACHE_HOME/mlpkit/<name>`` (default ``~/.cache/mlpkit/<name>``)
   when it holds all four files;
5. else a download into that cache (when allowed) from the data set's mirrors, each file
   verified before it is kept under its name.

A folder named in 1-3 that does not exist is an error, never a fallback to the next step
(``$MLPKIT_DATA_ROOT`` names ``<root>/<name>`` for every data set), and downloads only ever go
into the cache, never into a folder the user named. Files may be stored with or without
``.gz``, except that Fashion-MNIST's and KMNIST's published digests are of the ``.gz`` files:
keep those compressed (a decompressed copy cannot be verified).
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlpkit.core.errors import DataError
from mlpkit.data import download
from mlpkit.data.dataset import Dataset
from mlpkit.data.idx import read_idx_with_sha256
from mlpkit.data.idx_specs import IDX_DATASETS, IdxSpec, idx_checksums, idx_spec

__all__ = [
    "IDX_DATASETS",
    "ROOT_ENV_VAR",
    "IdxArrays",
    "idx_cache_dir",
    "load_idx_arrays",
    "load_idx_dataset",
    "resolve_idx_dir",
]

#: A folder whose subfolder ``<name>/`` holds each IDX data set (step 3 of the module docstring).
ROOT_ENV_VAR = "MLPKIT_DATA_ROOT"


@dataclass(frozen=True)
class IdxArrays:
    """The four arrays of an IDX data set: images uint8 (n, *shape), labels uint8 (n,); read-only."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


#: Loaded arrays, while anyone still holds them (a run frees its training images once its
#: arrays are prepared; ``reproduce`` holds them across its presets).
_CACHE: weakref.WeakValueDictionary[tuple, IdxArrays] = weakref.WeakValueDictionary()


def idx_cache_dir(name: str) -> Path:
    """Per-user cache of data set ``name``: $XDG_CACHE_HOME/mlpkit/<name>, else ~/.cache/mlpkit/<name>."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mlpkit" / name


def resolve_idx_dir(name: str, explicit: str | Path | None = None) -> Path | None:
    """The folder holding data set ``name`` (the order is in the module docstring).

    Parameters
    ----------
    name : str
        A key of `IDX_DATASETS`.
    explicit : str, Path or None
        A folder the caller named (``--data-dir``), tried first.

    Returns
    -------
    Path or None
        None when nothing was named and the cache lacks a file (then the loader downloads).

    Raises
    ------
    DataError
        If a named folder (argument, variable or root subfolder) is not a directory.
    """
    spec = idx_spec(name)
    root = os.environ.get(ROOT_ENV_VAR) or None
    candidates = (
        (explicit, "data directory"),
        (os.environ.get(spec.env_var) or None, f"${spec.env_var}"),
        (None if root is None else Path(root).expanduser() / name, f"${ROOT_ENV_VAR}/{name}"),
    )
    for given, origin in candidates:
        if given is not None:
            path = Path(given).expanduser()
            if not path.is_dir():
                raise DataError(f"{origin} {path} does not exist or is not a directory")
            return path
    cache = idx_cache_dir(name)
    return cache if not _missing(spec, cache) else None


def load_idx_arrays(
    name: str, data_dir: str | Path | None = None, *, download: bool = True, verify: bool = True
) -> IdxArrays:
    """Load and check the four arrays of data set ``name`` (see `resolve_idx_dir` for where).

    Parameters
    ----------
    name : str
        A key of `IDX_DATASETS`.
    data_dir : str, Path or None
        Folder holding the four files (each with or without ``.gz``); None: the variables,
        then the cache.
    download : bool
        Fetch missing files into the cache when no folder holds them.
    verify : bool
        Check each file's SHA-256 against the shipped digests.

    Returns
    -------
    IdxArrays
        Read-only arrays, shared with every other caller that loads the same files.

    Raises
    ------
    DataError
        For a missing folder or file, a failed download, a malformed or corrupt file, a
        checksum mismatch, or files that disagree with each other.
    """
    spec = idx_spec(name)
    directory = resolve_idx_dir(name, data_dir)
    if directory is None:
        cache = idx_cache_dir(name)
        if not download:
            raise DataError(
                f"{spec.title} not found: pass a data directory, set ${spec.env_var}, or allow downloading into {cache}"
            )
        _download_missing(spec, cache)
        directory = cache
    located = {field: _locate(directory, stem) for field, stem in spec.files.items()}
    paths = {field: path for field, path in located.items() if path is not None}
    if missing := [spec.files[field] for field in located if field not in paths]:
        found = [f"{p} {what}" for stem in missing for p in _candidates(directory, stem) if (what := _not_a_file(p))]
        instead = f"; found instead: {'; '.join(found)}" if found else ""
        raise DataError(f"{directory} lacks {spec.title} file(s): {', '.join(missing)} (with or without .gz){instead}")
    key = (name, *((str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in paths.values()))
    cached = _CACHE.get((*key, True)) or (None if verify else _CACHE.get((*key, False)))
    if cached is not None:
        return cached
    arrays = _decode(spec, paths, verify)
    _CACHE[(*key, verify)] = arrays
    return arrays


def load_idx_dataset(name: str, data_dir: str | Path | None = None, *, download: bool = True) -> Dataset:
    """The registered IDX data set ``name``, verified, as a `Dataset` (labels mapped to ``classes``).

    Parameters
    ----------
    name : str
        A key of `IDX_DATASETS`.
    data_dir : str, Path or None
        Its folder; None: found as the module docstring says.
    download : bool
        Fetch missing files into the cache when no folder holds them.

    Returns
    -------
    Dataset
        MNIST and KMNIST with their uint8 labels 0..9, Fashion-MNIST with its class names.

    Raises
    ------
    ConfigError
        For an unregistered name.
    DataError
        As `load_idx_arrays`.
    """
    spec = idx_spec(name)
    arrays = load_idx_arrays(name, data_dir, download=download)
    y_train, y_test = arrays.train_labels, arrays.test_labels
    if spec.classes != tuple(range(spec.n_classes)):
        names = np.asarray(spec.classes)
        y_train, y_test = names[y_train], names[y_test]
        y_train.flags.writeable = y_test.flags.writeable = False
    return Dataset(
        name=name,
        x_train=arrays.train_images,
        y_train=y_train,
        x_test=arrays.test_images,
        y_test=y_test,
        input_shape=spec.input_shape,
        classes=spec.classes,
    )


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


def _missing(spec: IdxSpec, directory: Path) -> list[str]:
    return [stem for stem in spec.files.values() if _locate(directory, stem) is None]


def _download_missing(spec: IdxSpec, cache: Path) -> None:
    checksums = idx_checksums(spec.name)
    cache.mkdir(parents=True, exist_ok=True)
    for stem in _missing(spec, cache):
        name, digest = f"{stem}.gz", checksums[stem]
        try:
            if spec.digest_of == "payload":
                download.fetch_file(name, cache, mirrors=spec.mirrors, sha256_of_payload=digest)
            else:
                download.fetch_file(name, cache, mirrors=spec.mirrors, sha256_of_file=digest)
        except DataError as exc:
            raise DataError(
                f"{exc}\nno {spec.title} copy was found locally either: give --data-dir DIR or set"
                f" {spec.env_var} to a folder holding the four {spec.title} files"
            ) from None


def _file_sha256(path: Path) -> str:
    try:
        with path.open("rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc.strerror or exc})") from None


def _decode(spec: IdxSpec, paths: dict[str, Path], verify: bool) -> IdxArrays:
    """Read, verify checksums and cross-check the four files."""
    checksums = idx_checksums(spec.name) if verify else {}
    shapes = spec.shapes
    arrays = {}
    for field, path in sorted(paths.items(), key=lambda item: "images" in item[0]):  # small files first
        expected = checksums.get(spec.files[field])
        if verify and spec.digest_of == "gzip" and (actual := _file_sha256(path)) != expected:
            raise DataError(
                f"{path}: checksum mismatch: SHA-256 of the file is {actual}, expected {expected} (the published"
                f" {spec.files[field]}.gz: corrupt, not the original {spec.title}, or a decompressed or"
                " recompressed copy, which cannot be verified)"
            )
        # verified files must be the originals, so their shapes are known: a header that says
        # otherwise is refused before its payload is read (no gzip bomb gets to allocate)
        array, actual = read_idx_with_sha256(
            path, expect_ndim=len(shapes[field]), expect_shape=shapes[field] if verify else None
        )
        if verify and spec.digest_of == "payload" and actual != expected:
            raise DataError(
                f"{path}: checksum mismatch: SHA-256 of the decompressed file is {actual}, "
                f"expected {expected} (corrupt or not the original {spec.title})"
            )
        array.flags.writeable = False
        arrays[field] = array
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        ipath, lpath = paths[f"{part}_images"], paths[f"{part}_labels"]
        if images.shape[1:] != spec.input_shape:
            shown = "x".join(map(str, images.shape[1:]))
            raise DataError(f"{ipath}: images are {shown}, expected {'x'.join(map(str, spec.input_shape))}")
        if len(images) != len(labels):
            raise DataError(f"{ipath.name} has {len(images)} images but {lpath.name} has {len(labels)} labels")
        if labels.size and labels.max() >= spec.n_classes:
            raise DataError(f"{lpath}: labels must lie in 0..{spec.n_classes - 1}, found {labels.max()}")
    return IdxArrays(**arrays)
