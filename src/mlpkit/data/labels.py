"""Label encodings."""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

from mlpkit.core.errors import InputError

__all__ = ["one_hot"]


def one_hot(labels: np.ndarray, num_classes: int = 10, *, dtype: DTypeLike = np.float64) -> np.ndarray:
    """(n,) integer labels in [0, num_classes) -> (n, num_classes) indicator matrix.

    Raises
    ------
    InputError
        If ``labels`` is not a 1-D integer array or has a label outside 0..num_classes-1.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"labels must be a 1-D integer array, got shape {labels.shape} dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise InputError(f"labels must lie in 0..{num_classes - 1}, got range {labels.min()}..{labels.max()}")
    out = np.zeros((labels.size, num_classes), dtype=dtype)
    out[np.arange(labels.size), labels] = 1
    return out
