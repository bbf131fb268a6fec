"""Standardizing pixels: one scalar mean and std, fitted on the training images only.

Why scalar: the seed report normalizes with the mean and std over all training pixels, and
per-pixel statistics would divide by zero on MNIST's always-blank border.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import DTypeLike

from mlpkit.core.arrays import input_array
from mlpkit.core.errors import DataError

__all__ = ["Normalizer"]

_BLOCK_ROWS = 1024  # rows per float64 temporary in `apply` (6 MB for MNIST), never a full-size copy
_FIT_BLOCK = 1 << 16  # pixels summed at a time in `fit`


@dataclass(frozen=True)
class Normalizer:
    """Standardize with one scalar mean and std over all pixels: x' = (x - mean) / std.

    Parameters
    ----------
    mean : float
        Subtracted from every pixel.
    std : float
        Divides every centred pixel; must be finite and > 0.

    Raises
    ------
    DataError
        If ``mean`` or ``std`` is not finite or ``std <= 0``.
    """

    mean: float
    std: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.mean) and math.isfinite(self.std) and self.std > 0):
            raise DataError(f"cannot normalize with mean={self.mean}, std={self.std} (std must be finite and > 0)")

    @classmethod
    def fit(cls, images: np.ndarray) -> Normalizer:
        """Mean and population std (ddof=0) over every pixel, in float64.

        uint8 input is summed exactly in integers (pixel and squared-pixel sums in uint64,
        block by block, so no full-size float copy is made and no BLAS threads are woken);
        the moments are then rounded once.

        Raises
        ------
        DataError
            For zero images, or images whose pixels are all equal (std 0).
        """
        images = np.asarray(images)
        if images.size == 0:
            raise DataError("cannot fit a normalizer on zero images")
        if images.dtype == np.uint8:
            flat, s1, s2 = images.reshape(-1), 0, 0
            for i in range(0, flat.size, _FIT_BLOCK):
                block = flat[i : i + _FIT_BLOCK]
                s1 += int(block.sum(dtype=np.uint64))
                s2 += int(np.multiply(block, block, dtype=np.uint32).sum(dtype=np.uint64))
            n = flat.size
            mean, var = s1 / n, (s2 * n - s1 * s1) / (n * n)
        else:
            mean, var = float(np.mean(images, dtype=np.float64)), float(np.var(images, dtype=np.float64))
        if var == 0:
            raise DataError(f"cannot normalize: all {images.size} pixels equal {mean} (std is 0)")
        return cls(mean=float(mean), std=math.sqrt(var))

    def apply(self, images: np.ndarray, dtype: DTypeLike = np.float32, *, bias_column: bool = False) -> np.ndarray:
        """(n, ...) images -> (n, features) array of ``dtype``; math in float64, in row blocks.

        Parameters
        ----------
        images : np.ndarray
            One image per row (any trailing shape; it is flattened).
        dtype : dtype-like
            Of the result.
        bias_column : bool
            If true, the result is (n, features + 1) with a last column of ones, made by
            `mlpkit.core.arrays.input_array` and filled in place (no second full-size copy,
            as adding the column afterwards would make).

        Returns
        -------
        np.ndarray
        """
        x = np.asarray(images)
        x = x.reshape(len(x), -1)
        d = x.shape[1]
        out = input_array(len(x), d, dtype, bias_column=bias_column)
        for i in range(0, len(x), _BLOCK_ROWS):
            block = x[i : i + _BLOCK_ROWS].astype(np.float64)
            block -= self.mean
            block /= self.std
            out[i : i + _BLOCK_ROWS, :d] = block
        return out
