"""A data set in the user's own IDX files: an images file and its labels file, or a folder in
MNIST's layout (a training pair and, optionally, a test pair).

Read with the strict reader of `mlpkit.data.idx`, so a truncated, padded or lying file stops
here with a message naming it. Labels are the label file's bytes, as integers.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from mlpkit.core.errors import DataError
from mlpkit.data.dataset import Dataset
from mlpkit.data.file_checks import checked_arrays, regular_file, user_dataset
from mlpkit.data.idx import read_idx

__all__ = ["MNIST_LAYOUT", "is_idx_folder", "labels_file_for", "read_idx_folder", "read_idx_pair"]

#: (images, labels) file names, without ".gz", of the training and the test pair.
MNIST_LAYOUT = (
    ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
)


def labels_file_for(images: Path) -> Path:
    """The labels file beside ``images``: its name with "images" -> "labels" and "idx3" -> "idx1".

    Raises
    ------
    DataError
        If the name holds neither, so no labels file can be guessed.
    """
    name = images.name.replace("images", "labels").replace("idx3", "idx1")
    if name == images.name:
        raise DataError(
            f"{images}: cannot tell its labels file from its name (no 'images' or 'idx3' in it); give it as data.labels"
        )
    return images.with_name(name)


def read_idx_pair(images: str | Path, labels: str | Path | None = None) -> Dataset:
    """uint8 inputs (n, ...) from an IDX images file and integer labels from its labels file.

    Parameters
    ----------
    images : str or Path
        The images file (gzip or not), at least two dimensions: (n, features...).
    labels : str, Path or None
        Its labels file, one dimension (n,); None: `labels_file_for` ``images``.

    Returns
    -------
    Dataset
        No test part; ``input_shape`` from the images file's header.

    Raises
    ------
    DataError
        Naming the file, for a missing or malformed file, counts that differ (naming both
        files), or a single class.
    """
    x, y, name = _pair(Path(images), None if labels is None else Path(labels))
    return user_dataset(name, x, y, locate=_locate)


def is_idx_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a training file of MNIST's layout (with or without .gz)."""
    return any(_find(folder, stem) is not None for stem in MNIST_LAYOUT[0])


def read_idx_folder(folder: str | Path) -> Dataset:
    """The training pair of a folder in MNIST's layout and, when both of its files are there, the test pair.

    Raises
    ------
    DataError
        If a file of a pair is missing (naming it), malformed, or the parts disagree.
    """
    folder = Path(folder)
    (train_images, train_labels), (test_images, test_labels) = (
        tuple(_find(folder, stem) for stem in pair) for pair in MNIST_LAYOUT
    )
    for found, stem in ((train_images, MNIST_LAYOUT[0][0]), (train_labels, MNIST_LAYOUT[0][1])):
        if found is None:
            raise DataError(f"{folder}: no {stem} (or {stem}.gz) beside the other training file")
    if (test_images is None) != (test_labels is None):
        missing = MNIST_LAYOUT[1][0] if test_images is None else MNIST_LAYOUT[1][1]
        raise DataError(f"{folder}: no {missing} (or {missing}.gz) beside the other test file")
    assert train_images is not None and train_labels is not None
    x, y, name = _pair(train_images, train_labels)
    train = user_dataset(str(folder), x, y, locate=_locate)
    if test_images is None or test_labels is None:
        return train
    x_test, y_test, name = _pair(test_images, test_labels)
    if x_test.shape[1:] != train.x_train.shape[1:]:
        raise DataError(
            f"{test_images}: test inputs have shape {x_test.shape[1:]}, the training inputs in"
            f" {train_images.name} {train.x_train.shape[1:]}"
        )
    x_test, y_test = checked_arrays(name, x_test, y_test, locate=_locate)
    return replace(train, x_test=x_test, y_test=y_test)


def _find(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    return None


def _pair(images: Path, labels: Path | None) -> tuple[np.ndarray, np.ndarray, str]:
    """(images, labels, name for messages) of an IDX pair, their counts checked."""
    x = read_idx(regular_file(images, "an IDX images file"))
    if x.ndim < 2:
        raise DataError(f"{images}: IDX header has {x.ndim} dimension, expected at least 2 (images: n, features...)")
    labels = labels_file_for(images) if labels is None else labels
    y = read_idx(regular_file(labels, f"the IDX labels file of {images.name}"), expect_ndim=1)
    if len(x) != len(y):
        raise DataError(f"{images} holds {len(x)} inputs but {labels} holds {len(y)} labels")
    return x, y, str(images)


def _locate(row: int, feature: int | None) -> str:  # pragma: no cover - uint8 inputs and labels always pass
    return f"item {row}"
