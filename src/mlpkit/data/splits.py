"""Named train/validation(/test) splits of a dataset: which images train, which validate.

Splits are views of the (read-only) source arrays, flattened to one row per image, so making
one copies nothing; the image shape is kept beside them for whoever needs the pictures back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mlpkit.core.errors import ConfigError

if TYPE_CHECKING:
    from mlpkit.data.mnist import Mnist

__all__ = ["SPLITS", "Split", "make_split", "split_sizes"]

#: The split names `make_split` knows.
SPLITS = ("full", "seed")


@dataclass(frozen=True, kw_only=True)
class Split:
    """Named train/validation(/test) arrays: x is (n, features) uint8, y is (n,) integer labels.

    Parameters
    ----------
    x_train, y_train : np.ndarray
        Training images (one flattened image per row) and their labels.
    x_val, y_val : np.ndarray
        Validation images and labels.
    x_test, y_test : np.ndarray or None
        Held-out test images and labels, where the split has them.
    name : str
        The split's name (one of `SPLITS`).
    image_shape : tuple of int
        Shape of one image before flattening, e.g. ``(28, 28)``.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    name: str
    image_shape: tuple[int, ...]


def make_split(mnist: Mnist, name: str = "seed", *, n_train: int | None = None, n_val: int | None = None) -> Split:
    """The named split of ``mnist``; x is flattened to (n, 784) uint8 views of the source arrays.

    Parameters
    ----------
    mnist : Mnist
        The loaded data set (see `mlpkit.data.mnist.load_mnist`).
    name : {"seed", "full"}
        ``"seed"``: the first ``n_train`` (20,000) training images; validation = the first
        ``n_val`` (10,000) test images. ``"full"``: the first ``n_train`` (50,000) training
        images; validation = the last ``n_val`` (10,000) training images; test = the test images.
    n_train, n_val : int or None
        Sizes of the training and validation sets; None for the split's default.

    Returns
    -------
    Split

    Raises
    ------
    ConfigError
        For an unknown name, a size outside 1..available, or (``"full"``) training and
        validation sets that would overlap.
    """
    image_shape = tuple(int(n) for n in mnist.train_images.shape[1:])
    tr_x, tr_y = mnist.train_images.reshape(len(mnist.train_images), -1), mnist.train_labels
    te_x, te_y = mnist.test_images.reshape(len(mnist.test_images), -1), mnist.test_labels
    n_tr, n_va = split_sizes(name, n_train, n_val, train_available=len(tr_x), test_available=len(te_x))
    if name == "seed":
        return Split(
            name=name,
            image_shape=image_shape,
            x_train=tr_x[:n_tr],
            y_train=tr_y[:n_tr],
            x_val=te_x[:n_va],
            y_val=te_y[:n_va],
        )
    return Split(
        name=name,
        image_shape=image_shape,
        x_train=tr_x[:n_tr],
        y_train=tr_y[:n_tr],
        x_val=tr_x[-n_va:],
        y_val=tr_y[-n_va:],
        x_test=te_x,
        y_test=te_y,
    )


def split_sizes(
    name: str, n_train: int | None, n_val: int | None, *, train_available: int, test_available: int
) -> tuple[int, int]:
    """The training and validation set sizes of split ``name``, checked against what is available.

    Known before any image is read (from the data set's registered sizes), so configs are
    refused before any work; `make_split` applies the same rules to the loaded arrays.

    Parameters
    ----------
    name : {"seed", "full"}
        The split (see `make_split`).
    n_train, n_val : int or None
        Requested sizes; None for the split's default.
    train_available, test_available : int
        Images in the data set's training and test parts.

    Returns
    -------
    (int, int)
        ``(n_train, n_val)``.

    Raises
    ------
    ConfigError
        For an unknown split, a size outside 1..available, or overlapping sets (``"full"``).
    """
    if name not in SPLITS:
        raise ConfigError(f"unknown split {name!r}; valid splits: {', '.join(SPLITS)}")
    if name == "seed":
        n_tr = _split_size("n_train", n_train, 20_000, train_available)
        return n_tr, _split_size("n_val", n_val, 10_000, test_available)
    n_tr = _split_size("n_train", n_train, 50_000, train_available)
    n_va = _split_size("n_val", n_val, 10_000, train_available)
    if n_tr + n_va > train_available:
        raise ConfigError(f"n_train={n_tr} + n_val={n_va} exceeds the {train_available} training images (overlap)")
    return n_tr, n_va


def _split_size(what: str, value: int | None, default: int, available: int) -> int:
    """``value`` (or ``default`` when None) checked to be an integer in 1..available."""
    n = default if value is None else value
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 0 < n <= available:
        raise ConfigError(f"{what} must be an integer in 1..{available}, got {n!r}")
    return int(n)
