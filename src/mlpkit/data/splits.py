"""Named train/validation(/test) splits of a data set: which inputs train, which validate.

- ``seed``: the report's: the first ``n_train`` training inputs; validation = the first
  ``n_val`` inputs of the *test* part (the only split that validates on test data).
- ``full``: the first ``n_train`` training inputs; validation = the last ``n_val`` ones.
- ``holdout``: a stratified share ``val_fraction`` of the training part, drawn with the run's
  seed, validates; the rest trains (in source order).
- ``given``: all training inputs train; a validation data set given as a file validates.

Apart from ``seed``, the test part is passed through untouched for ``evaluate``. Splits of
contiguous rows are views of the (read-only) source arrays, flattened to one row per input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mlpkit.core.errors import ConfigError, DataError
from mlpkit.data.dataset import Dataset

if TYPE_CHECKING:
    from mlpkit.data.mnist import Mnist

__all__ = ["SPLITS", "Split", "make_split", "split_sizes", "stratified_pick"]

#: The split names `make_split` knows.
SPLITS = ("seed", "full", "holdout", "given")
_SEED_SIZES = (20_000, 10_000)  # the report's training and validation sizes (capped by what there is)
_FULL_VAL = 5_000  # "full" validates on the last 5,000 training inputs (a twelfth of smaller sets)


@dataclass(frozen=True, kw_only=True)
class Split:
    """Named train/validation(/test) arrays: x is (n, features), y is (n,) labels as they came.

    Parameters
    ----------
    x_train, y_train : np.ndarray
        Training inputs (one flattened input per row) and their labels.
    x_val, y_val : np.ndarray
        Validation inputs and labels.
    x_test, y_test : np.ndarray or None
        Held-out test inputs and labels, where the split keeps them.
    name : str
        The split's name (one of `SPLITS`).
    image_shape : tuple of int
        Shape of one input before flattening, e.g. ``(28, 28)``.
    classes : tuple or None
        Every class label in order (the data set's own), or None for the sorted distinct
        training labels (see `mlpkit.data.prepare.class_index`).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    name: str
    image_shape: tuple[int, ...]
    classes: tuple | None = None


def make_split(
    data: Dataset | Mnist,
    name: str = "seed",
    *,
    n_train: int | None = None,
    n_val: int | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    validation: Dataset | None = None,
) -> Split:
    """The named split of ``data`` (see the module docstring); x flattened to (n, features).

    Parameters
    ----------
    data : Dataset or Mnist
        The loaded data set.
    name : {"seed", "full", "holdout", "given"}
        Which split.
    n_train, n_val : int or None
        Sizes of the training and validation sets (at most what the split has); None for the
        split's default: ``seed`` 20,000 and 10,000, ``full`` 5,000 validation inputs (a twelfth
        of a smaller set) and the rest training (MNIST: 55,000 / 5,000), ``holdout`` and ``given`` all they have.
    val_fraction : float
        In (0, 1): the share of the training part ``holdout`` validates on.
    seed : int
        Draws ``holdout``'s validation rows (the run's seed).
    validation : Dataset or None
        ``given``'s validation data (its training part); required by ``given`` only.

    Returns
    -------
    Split

    Raises
    ------
    ConfigError
        For an unknown name, a size outside 1..available, overlapping sets (``full``), a
        ``seed`` split of data without a test part, or a missing/needless ``validation``.
    DataError
        If ``validation``'s inputs do not have the data set's width.
    """
    ds = data if isinstance(data, Dataset) else _from_mnist(data)
    if name != "given" and validation is not None:
        raise ConfigError(f"a validation file is only used by split 'given', not {name!r}")
    x, y = ds.flat(ds.x_train), ds.y_train
    test_x = None if ds.x_test is None else ds.flat(ds.x_test)

    def split(x_tr: np.ndarray, y_tr: np.ndarray, x_va: np.ndarray, y_va: np.ndarray, keep_test: bool = True) -> Split:
        return Split(
            x_train=x_tr,
            y_train=y_tr,
            x_val=x_va,
            y_val=y_va,
            x_test=test_x if keep_test else None,
            y_test=ds.y_test if keep_test else None,
            name=name,
            image_shape=ds.input_shape,
            classes=ds.classes,
        )

    if name == "seed":
        if test_x is None or ds.y_test is None:
            raise ConfigError(f"split 'seed' validates on the test part, which {ds.name} lacks; use split 'holdout'")
        n_tr, n_va = split_sizes(name, n_train, n_val, train_available=len(x), test_available=len(test_x))
        return split(x[:n_tr], y[:n_tr], test_x[:n_va], ds.y_test[:n_va], keep_test=False)
    if name == "full":
        n_test = 0 if test_x is None else len(test_x)
        n_tr, n_va = split_sizes(name, n_train, n_val, train_available=len(x), test_available=n_test)
        return split(x[:n_tr], y[:n_tr], x[-n_va:], y[-n_va:])
    if name == "holdout":
        if not 0 < val_fraction < 1:
            raise ConfigError(f"data.val_fraction must lie in (0, 1), got {val_fraction!r}")
        is_val = np.zeros(len(y), dtype=bool)
        is_val[stratified_pick(y, val_fraction, np.random.default_rng(seed))] = True
        if is_val.all() or not is_val.any():
            raise ConfigError(
                f"data.val_fraction={val_fraction} of {len(y)} training inputs leaves an empty training or"
                " validation set"
            )
        train_rows, val_rows = np.flatnonzero(~is_val), np.flatnonzero(is_val)
        n_tr = _split_size("n_train", n_train, len(train_rows), len(train_rows))
        n_va = _split_size("n_val", n_val, len(val_rows), len(val_rows))
        train_rows, val_rows = train_rows[:n_tr], val_rows[:n_va]
        return split(x[train_rows], y[train_rows], x[val_rows], y[val_rows])
    if name == "given":
        if validation is None:
            raise ConfigError("split 'given' needs a validation file: set data.validation")
        if validation.n_features != ds.n_features:
            raise DataError(
                f"{validation.name}: validation inputs have {validation.n_features} features,"
                f" {ds.name} has {ds.n_features}"
            )
        vx, vy = validation.flat(validation.x_train), validation.y_train
        n_tr = _split_size("n_train", n_train, len(x), len(x))
        n_va = _split_size("n_val", n_val, len(vx), len(vx))
        return split(x[:n_tr], y[:n_tr], vx[:n_va], vy[:n_va])
    raise ConfigError(f"unknown split {name!r}; valid splits: {', '.join(SPLITS)}")


def _from_mnist(mnist: Mnist) -> Dataset:
    return Dataset(
        name="mnist",
        x_train=mnist.train_images,
        y_train=mnist.train_labels,
        x_test=mnist.test_images,
        y_test=mnist.test_labels,
        input_shape=mnist.train_images.shape[1:],
    )


def stratified_pick(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted row indices holding ``round(fraction * count)`` rows of each label, drawn by ``rng``.

    Stratified so that data sorted by label (a common CSV layout) still gives every class its
    share, and a rare class is not left out by chance.
    """
    y = np.asarray(labels)
    if len(y) == 0:
        return np.zeros(0, dtype=np.intp)
    order = rng.permutation(len(y))
    _, inverse = np.unique(y[order], return_inverse=True)
    picked = [
        order[inverse == c][: int(round(fraction * np.count_nonzero(inverse == c)))] for c in range(inverse.max() + 1)
    ]
    return np.sort(np.concatenate(picked))


def split_sizes(
    name: str, n_train: int | None, n_val: int | None, *, train_available: int, test_available: int
) -> tuple[int, int]:
    """The training and validation set sizes of split ``name``, checked against what is available.

    Known before any input is read (from a registered data set's sizes), so configs are refused
    before any work; `make_split` applies the same rules to the loaded arrays.

    Parameters
    ----------
    name : str
        The split (see `make_split`); ``holdout`` and ``given`` sizes depend on the data.
    n_train, n_val : int or None
        Requested sizes; None for the split's default.
    train_available, test_available : int
        Inputs in the data set's training and test parts.

    Returns
    -------
    (int, int)
        ``(n_train, n_val)``; for ``holdout`` and ``given``, upper bounds.

    Raises
    ------
    ConfigError
        For an unknown split, a size outside 1..available, or overlapping sets (``full``).
    """
    if name not in SPLITS:
        raise ConfigError(f"unknown split {name!r}; valid splits: {', '.join(SPLITS)}")
    if name == "seed":
        n_tr = _split_size("n_train", n_train, min(_SEED_SIZES[0], train_available), train_available)
        return n_tr, _split_size("n_val", n_val, min(_SEED_SIZES[1], test_available), test_available)
    if name == "full":
        n_va = _split_size("n_val", n_val, min(_FULL_VAL, max(1, train_available // 12)), train_available)
        n_tr = _split_size("n_train", n_train, max(1, train_available - n_va), train_available)
        if n_tr + n_va > train_available:
            raise ConfigError(f"n_train={n_tr} + n_val={n_va} exceeds the {train_available} training inputs (overlap)")
        return n_tr, n_va
    return (
        _split_size("n_train", n_train, train_available, train_available),
        n_val if n_val is not None else train_available,
    )


def _split_size(what: str, value: int | None, default: int, available: int) -> int:
    """``value`` (or ``default`` when None) checked to be an integer in 1..available."""
    n = default if value is None else value
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 0 < n <= available:
        raise ConfigError(f"{what} must be an integer in 1..{available}, got {n!r}")
    return int(n)
