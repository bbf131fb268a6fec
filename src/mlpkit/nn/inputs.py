"""Checking what a model is given: raw features (then prepared: cast, bias column added),
prepared inputs, integer labels. Each failure is one InputError line that says what to fix.

The :class:`~mlpkit.nn.mlp.MLP` methods of the same names call these with its sizes.
"""

from __future__ import annotations

import numpy as np

from mlpkit.core.arrays import input_array
from mlpkit.core.errors import InputError


def _all_finite(x: np.ndarray, rows: int = 4096) -> bool:
    """np.isfinite(x).all() in row blocks: no boolean temporary the size of the data."""
    return all(np.isfinite(x[i : i + rows]).all() for i in range(0, len(x), rows))


def prepare_inputs(x: np.ndarray, n_features: int, dtype: np.dtype, *, bias_column: bool) -> np.ndarray:
    """Validate raw features (N, n_features) (or (N, h, w) images), cast to ``dtype``, add the bias column."""
    x = np.asarray(x)
    if x.ndim == 3 and x.shape[1] * x.shape[2] == n_features:
        x = x.reshape(len(x), -1)
    if x.ndim != 2:
        raise InputError(f"inputs must be a 2-D array (samples, {n_features}), got shape {x.shape}")
    if x.shape[0] == 0:
        raise InputError("inputs are empty (0 samples)")
    if x.shape[1] != n_features:
        raise InputError(f"inputs have {x.shape[1]} features, the model expects {n_features}")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise InputError(f"inputs must be real numbers, got dtype {x.dtype}")
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        bad = int(np.count_nonzero(~np.isfinite(x)))
        raise InputError(f"inputs contain {bad} NaN or infinite values")
    if x.dtype.itemsize > dtype.itemsize:  # would the cast overflow to inf?
        largest, limit = max(abs(float(x.max())), abs(float(x.min()))), float(np.finfo(dtype).max)
        if largest > limit:
            raise InputError(
                f"inputs hold values up to {largest:.3g}, beyond what {dtype.name} can hold"
                f" ({limit:.3g}): scale them, or use dtype='float64'"
            )
    if bias_column:
        out = input_array(x.shape[0], n_features, dtype, bias_column=True)
        out[:, :n_features] = x
        return out
    return np.ascontiguousarray(x, dtype=dtype)


def check_prepared(x: np.ndarray, input_width: int, what: str = "inputs") -> None:
    """Raise a clear InputError unless ``x`` looks like ``prepare_inputs``'s output: a 2-D
    array of ``input_width`` columns, not empty, of finite floats (``what`` names it)."""
    if not isinstance(x, np.ndarray) or x.ndim != 2 or x.shape[1] != input_width:
        raise InputError(
            f"{what} must come from model.prepare_inputs: shape (samples, {input_width}), got {np.shape(x)}"
        )
    if len(x) == 0:
        raise InputError(f"{what} are empty (0 samples)")
    if not np.issubdtype(x.dtype, np.floating) or not _all_finite(x):
        raise InputError(f"{what} must be finite floats (dtype {x.dtype}); see model.prepare_inputs")


def check_labels(y: np.ndarray, n: int, n_classes: int) -> np.ndarray:
    """Integer labels (N,) in [0, n_classes), as intp for fast indexing."""
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise InputError(f"labels must be a 1-D array of {n} entries, got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        if np.issubdtype(y.dtype, np.floating) and np.isfinite(y).all() and (y == np.round(y)).all():
            y = y.astype(np.intp)
        else:
            raise InputError(f"labels must be integers, got dtype {y.dtype}")
    if len(y) and (y.min() < 0 or y.max() >= n_classes):
        raise InputError(f"labels must lie in [0, {n_classes - 1}], found {y.min()}..{y.max()}")
    return y.astype(np.intp, copy=False)
