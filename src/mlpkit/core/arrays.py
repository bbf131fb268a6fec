"""Array layouts shared by the layers: aligned flat buffers, views that span one buffer, and the
input array with its bias column (the one place that column is made)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import DTypeLike

#: Byte alignment of the flat parameter buffers: one cache line, so that the compiled kernels'
#: 64-byte vector loads and stores of a weight row never straddle two lines.
ALIGNMENT = 64


def aligned_zeros(n: int, dtype: DTypeLike) -> np.ndarray:
    """A zeroed 1-D array of ``n`` elements whose data starts on an ``ALIGNMENT``-byte boundary."""
    return _aligned(np.zeros, n, dtype)


def aligned_empty(n: int, dtype: DTypeLike) -> np.ndarray:
    """``aligned_zeros`` without the zeros, for scratch buffers the kernels write before reading."""
    return _aligned(np.empty, n, dtype)


def _aligned(allocate, n: int, dtype: DTypeLike) -> np.ndarray:
    itemsize = np.dtype(dtype).itemsize
    raw = allocate(n + ALIGNMENT // itemsize, dtype=dtype)  # a view of it has it as .base (see flat_span)
    start = (-raw.ctypes.data % ALIGNMENT) // itemsize
    return raw[start : start + n]


def flat_span(arrays: Sequence[np.ndarray]) -> np.ndarray | None:
    """A 1-D view covering ``arrays`` exactly, if they are consecutive C-ordered views of one buffer.

    None otherwise (then callers loop over the arrays).
    """
    if not arrays:
        return None
    base = arrays[0].base
    if not isinstance(base, np.ndarray) or base.ndim != 1 or not base.flags.c_contiguous:
        return None
    itemsize = base.itemsize
    base_start = base.__array_interface__["data"][0]
    start = arrays[0].__array_interface__["data"][0]  # the views may start past the base's start
    for a in arrays:
        if a.base is not base or a.dtype != base.dtype or not a.flags.c_contiguous:
            return None
        if a.__array_interface__["data"][0] != start:
            return None
        start += a.size * itemsize
    first = (arrays[0].__array_interface__["data"][0] - base_start) // itemsize
    return base[first : first + (start - arrays[0].__array_interface__["data"][0]) // itemsize]


def input_array(n_rows: int, n_features: int, dtype: DTypeLike, *, bias_column: bool) -> np.ndarray:
    """An empty ``(n_rows, n_features)`` array, or ``(n_rows, n_features + 1)`` whose last column
    already holds the constant 1 of the bias trick; callers write the features into
    ``out[:, :n_features]``. The only place the bias column is made."""
    out = np.empty((n_rows, n_features + 1 if bias_column else n_features), dtype=dtype)
    if bias_column:
        out[:, n_features] = 1
    return out
