"""Preparing a split for a model: normalized with the training set's statistics, cast to the
model's dtype, with the bias column where the model wants one, labels as class indices.

The validation inputs are normalized with the *training* set's statistics (never their own):
the validation set stands for data the model has not seen, whose statistics are unknown.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from mlpkit.core.errors import DataError
from mlpkit.data.normalize import Normalization
from mlpkit.data.splits import Split

__all__ = ["PreparedData", "class_index", "classes_of", "prepare_data"]


@dataclass
class PreparedData:
    """Normalized (and bias-augmented) arrays ready for the trainer, plus what made them.

    Parameters
    ----------
    split_name : str
        The split the arrays come from.
    normalization : Normalization
        Fitted on the training inputs; every input was normalized with it.
    x_train, y_train, x_val, y_val : np.ndarray
        Features (n, width) of the model's dtype and class indices (n,) as ``np.intp``.
    image_shape : tuple of int
        Shape of one input, e.g. ``(28, 28)``: the first ``prod(image_shape)`` columns of x
        are its values (a bias column, if any, follows them).
    classes : tuple
        The label of each class index (ints or strings), in order.
    raw_uint8 : bool
        The raw inputs were uint8 (pixels), so `val_images` recovers them exactly.
    dataset : str
        The data set's name or path (recorded in the model file).
    raw_train : np.ndarray or None
        The raw training inputs (n, features), kept only when they are augmented each epoch.
    """

    split_name: str
    normalization: Normalization
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    image_shape: tuple[int, ...]
    classes: tuple = tuple(range(10))
    raw_uint8: bool = True
    dataset: str = "mnist"
    raw_train: np.ndarray | None = None

    @property
    def mean(self) -> float | None:
        """The global mean (None for the other kinds of normalization)."""
        return self.normalization.mean if self.normalization.kind == "global" else None  # type: ignore[return-value]

    @property
    def std(self) -> float | None:
        """The global std (None for the other kinds of normalization)."""
        return self.normalization.std if self.normalization.kind == "global" else None  # type: ignore[return-value]

    @property
    def n_features(self) -> int:
        return math.prod(self.image_shape)

    def val_images(self, rows: np.ndarray) -> np.ndarray:
        """uint8 (len(rows), *image_shape) pictures of those validation inputs, for galleries of mistakes.

        Undone from ``x_val`` rather than kept (7.5 MiB less through training on MNIST). For
        uint8 pixels the result is exact: a pixel p was stored as (p - mean) / std, rounded to
        at worst float32 (relative error 6e-8, under 2e-5 of a pixel step after scaling back),
        and rounding recovers p. Other inputs are scaled to 0..255 over the pictures shown.
        """
        rows = np.asarray(rows)
        raw = self.normalization.undo(self.x_val[rows, : self.n_features])
        if not self.raw_uint8 and raw.size:
            low, high = float(raw.min()), float(raw.max())
            raw = (raw - low) * (255.0 / (high - low)) if high > low else np.zeros_like(raw)
        return np.clip(np.rint(raw), 0, 255).astype(np.uint8).reshape(len(rows), *self.image_shape)


def classes_of(split: Split) -> tuple:
    """The class labels of ``split`` in order: the data set's own, else the sorted distinct
    training labels (as Python ints or strings, ready for JSON)."""
    labels = split.classes if split.classes is not None else np.unique(np.asarray(split.y_train))
    return tuple(c.item() if isinstance(c, np.generic) else c for c in labels)


def class_index(labels: np.ndarray, classes: Sequence[Any], *, what: str = "labels") -> np.ndarray:
    """(n,) labels -> (n,) ``np.intp`` positions in ``classes``.

    Raises
    ------
    DataError
        Naming the labels (up to five) that are not among ``classes``.
    """
    y = np.asarray(labels)
    if (
        np.issubdtype(y.dtype, np.integer)
        and len(classes) > 0
        and all(isinstance(c, int) for c in classes)
        and list(classes) == list(range(len(classes)))
    ):
        if y.size and (int(y.min()) < 0 or int(y.max()) >= len(classes)):
            bad = np.unique(y[(y < 0) | (y >= len(classes))])
            raise DataError(
                f"{what}: label(s) {_listed(bad)} are not among the {len(classes)} classes 0..{len(classes) - 1}"
            )
        return np.asarray(y, dtype=np.intp)
    lookup = {c: i for i, c in enumerate(classes)}
    try:
        return np.fromiter(
            (lookup[v.item() if isinstance(v, np.generic) else v] for v in y), dtype=np.intp, count=len(y)
        )
    except KeyError:
        unknown = sorted({v.item() if isinstance(v, np.generic) else v for v in y} - set(lookup), key=str)
        raise DataError(
            f"{what}: label(s) {_listed(unknown)} do not occur among the training labels {_listed(list(classes))}"
        ) from None


def _listed(values: Any) -> str:
    items = [repr(v.item() if isinstance(v, np.generic) else v) for v in list(values)[:5]]
    return ", ".join(items) + (", ..." if len(values) > 5 else "")


def prepare_data(split: Split, *, dtype: DTypeLike, bias_column: bool, normalization: str = "global") -> PreparedData:
    """Normalize ``split`` with statistics of its training inputs and cast it for a model.

    Parameters
    ----------
    split : Split
        Training and validation inputs (one flattened input per row) and labels.
    dtype : dtype-like
        Of the prepared features (the model's dtype).
    bias_column : bool
        Append a column of ones (the model's ``bias="input_column"`` mode), made in place by
        `Normalization.apply` (no second full-size copy).
    normalization : {"global", "per_feature", "none"}
        Which `Normalization` to fit on the training inputs.

    Returns
    -------
    PreparedData

    Raises
    ------
    DataError
        If the training inputs cannot be normalized (none, or all values equal), are not finite
        real numbers, or a validation label is not among the classes.
    """
    for part, x in (("training", split.x_train), ("validation", split.x_val)):
        _check_finite(x, part)
    norm = Normalization.fit(split.x_train, normalization)
    classes = classes_of(split)
    return PreparedData(
        split_name=split.name,
        normalization=norm,
        x_train=norm.apply(split.x_train, dtype=dtype, bias_column=bias_column),
        y_train=class_index(split.y_train, classes, what="training labels"),
        x_val=norm.apply(split.x_val, dtype=dtype, bias_column=bias_column),
        y_val=class_index(split.y_val, classes, what="validation labels"),
        image_shape=tuple(split.image_shape),
        classes=classes,
        raw_uint8=split.x_train.dtype == np.uint8,
    )


def _check_finite(x: np.ndarray, part: str) -> None:
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise DataError(f"{part} inputs must be real numbers, got dtype {x.dtype}")
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        row, col = (int(i) for i in np.argwhere(~np.isfinite(x))[0])
        raise DataError(f"{part} inputs hold a NaN or infinite value (row {row}, column {col})")
