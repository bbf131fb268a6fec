"""A labelled data set as it comes from its source, before any split or normalization.

Every source (the IDX family, scikit-learn's digits, the user's own files) gives one of these,
so splitting, normalizing and label mapping are written once, for all of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mlpkit.core.errors import DataError

__all__ = ["Dataset"]


@dataclass(frozen=True, kw_only=True)
class Dataset:
    """Raw inputs and labels: a training part and, where the source has one, a test part.

    Parameters
    ----------
    name : str
        A registered name (``"mnist"``) or the path the data came from.
    x_train : np.ndarray
        (n, *input_shape) raw inputs: uint8 pixels or finite real numbers.
    y_train : np.ndarray
        (n,) labels of any type (integers, strings).
    x_test, y_test : np.ndarray or None
        The test part, only ever read by ``evaluate`` (and by the report's ``seed`` split).
    input_shape : tuple of int
        Shape of one input, e.g. ``(28, 28)`` or ``(13,)`` for a CSV row.
    classes : tuple or None
        Every class label in order, when the source defines them (MNIST's 0..9, an image
        folder's subfolders); None: the sorted distinct training labels.
    test_carved : bool
        The test part was carved off the source's only part (see
        `mlpkit.data.registry.carve_test`), not shipped with it.

    Raises
    ------
    DataError
        If the arrays disagree with each other or with ``input_shape``.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    input_shape: tuple[int, ...]
    classes: tuple | None = None
    test_carved: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_shape", tuple(int(s) for s in self.input_shape))
        if (self.x_test is None) != (self.y_test is None):
            raise DataError(f"{self.name}: a test part needs both inputs and labels")
        for part, x, y in (("training", self.x_train, self.y_train), ("test", self.x_test, self.y_test)):
            if x is None or y is None:
                continue
            if y.ndim != 1 or len(x) != len(y):
                raise DataError(f"{self.name}: {part} part has {len(x)} inputs but labels of shape {y.shape}")
            if math.prod(x.shape[1:]) != math.prod(self.input_shape):
                raise DataError(f"{self.name}: {part} inputs have shape {x.shape[1:]}, expected {self.input_shape}")

    @property
    def n_features(self) -> int:
        """Values per input: the product of `input_shape`."""
        return math.prod(self.input_shape)

    @property
    def has_test(self) -> bool:
        return self.x_test is not None

    def flat(self, x: np.ndarray) -> np.ndarray:
        """(n, features) view of (n, *input_shape) inputs (no copy for contiguous arrays)."""
        return np.asarray(x).reshape(len(x), -1)
