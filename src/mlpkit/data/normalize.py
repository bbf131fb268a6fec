"""Standardizing inputs, fitted on the training split only: `Normalizer` is the seed's one
scalar mean and std over all pixels; `Normalization` adds the kinds a model file records
(``global`` = `Normalizer`, ``per_feature``, ``none``).

Why scalar by default: the seed report normalizes with the mean and std over all training
pixels, and per-pixel statistics divide by zero on MNIST's always-blank border (``per_feature``
sets a constant column's std to 1); tables whose columns have different units want ``per_feature``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from mlpkit.core.arrays import input_array
from mlpkit.core.errors import DataError

__all__ = ["NORMALIZATION_KINDS", "Normalization", "Normalizer"]

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


#: The kinds of `Normalization` (``[data] normalization``).
NORMALIZATION_KINDS = ("global", "per_feature", "none")


@dataclass(frozen=True, eq=False)
class Normalization:
    """How raw inputs are standardized before the network sees them; fitted on training data only.

    Parameters
    ----------
    kind : {"global", "per_feature", "none"}
        One scalar mean/std over all features (the seed's, `Normalizer`), one per feature
        (each column standardized), or none.
    mean, std : float or np.ndarray or None
        Floats for ``"global"``, 1-D float64 arrays (one entry per feature) for
        ``"per_feature"``, None for ``"none"``; every std finite and > 0.

    Raises
    ------
    DataError
        For an unknown kind or statistics that do not fit it.
    """

    kind: str
    mean: float | np.ndarray | None = None
    std: float | np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.kind not in NORMALIZATION_KINDS:
            raise DataError(f"unknown normalization kind {self.kind!r}; valid: {', '.join(NORMALIZATION_KINDS)}")
        if self.kind == "none":
            if self.mean is not None or self.std is not None:
                raise DataError("normalization 'none' takes no mean or std")
        elif self.kind == "global":
            scalars = _finite_scalar(self.mean), _finite_scalar(self.std)
            if scalars[0] is None or scalars[1] is None or scalars[1] <= 0:
                raise DataError(f"global normalization needs finite mean and std > 0, got {self.mean!r}, {self.std!r}")
            object.__setattr__(self, "mean", scalars[0])
            object.__setattr__(self, "std", scalars[1])
        else:
            mean, std = np.asarray(self.mean, dtype=np.float64), np.asarray(self.std, dtype=np.float64)
            if mean.ndim != 1 or mean.shape != std.shape or mean.size == 0:
                raise DataError(
                    f"per_feature normalization needs two 1-D arrays of one size, got {mean.shape}, {std.shape}"
                )
            if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
                raise DataError("per_feature normalization needs finite means and finite stds > 0")
            object.__setattr__(self, "mean", mean)
            object.__setattr__(self, "std", std)

    @classmethod
    def fit(cls, x: np.ndarray, kind: str = "global") -> Normalization:
        """The ``kind`` of normalization fitted on training inputs ``x`` (n, ...).

        ``"global"`` is `Normalizer.fit` (the seed's statistics, to the bit). ``"per_feature"``
        takes each column's mean and population std in float64; a constant column (MNIST's
        blank border) gets std 1, as scikit-learn's StandardScaler does, instead of a division by 0.

        Raises
        ------
        DataError
            For an unknown kind, zero inputs, or (``"global"``) inputs that are all equal.
        """
        if kind not in NORMALIZATION_KINDS:
            raise DataError(f"unknown normalization kind {kind!r}; valid: {', '.join(NORMALIZATION_KINDS)}")
        if kind == "none":
            return cls("none")
        if kind == "global":
            fitted = Normalizer.fit(x)
            return cls("global", fitted.mean, fitted.std)
        flat = np.asarray(x).reshape(len(x), -1)
        if len(flat) == 0:
            raise DataError("cannot fit a normalizer on zero inputs")
        mean = np.zeros(flat.shape[1])
        square = np.zeros(flat.shape[1])
        for i in range(0, len(flat), _BLOCK_ROWS):
            block = flat[i : i + _BLOCK_ROWS].astype(np.float64)
            mean += block.sum(axis=0)
        mean /= len(flat)
        for i in range(0, len(flat), _BLOCK_ROWS):
            block = flat[i : i + _BLOCK_ROWS].astype(np.float64) - mean
            square += (block * block).sum(axis=0)
        std = np.sqrt(square / len(flat))
        std[std == 0] = 1.0
        return cls("per_feature", mean, std)

    def check_features(self, n_features: int) -> None:
        """Raise DataError unless per-feature statistics have ``n_features`` entries."""
        if isinstance(self.mean, np.ndarray) and self.mean.shape != (n_features,):
            raise DataError(f"per_feature normalization has {self.mean.size} features, the model {n_features}")

    def apply(self, x: np.ndarray, dtype: DTypeLike = np.float32, *, bias_column: bool = False) -> np.ndarray:
        """(n, ...) raw inputs -> (n, features) array of ``dtype``; math in float64, in row blocks.

        ``"global"`` does exactly what `Normalizer.apply` does (subtract, then divide, in float64,
        then one rounding), so a model trained on its output predicts the same.

        Parameters
        ----------
        x : np.ndarray
            One input per row (any trailing shape; it is flattened).
        dtype : dtype-like
            Of the result.
        bias_column : bool
            Append a column of ones (see `mlpkit.core.arrays.input_array`), filled in place.
        """
        x = np.asarray(x)
        x = x.reshape(len(x), -1)
        d = x.shape[1]
        self.check_features(d)
        out = input_array(len(x), d, dtype, bias_column=bias_column)
        for i in range(0, len(x), _BLOCK_ROWS):
            block = x[i : i + _BLOCK_ROWS].astype(np.float64)
            if self.mean is not None and self.std is not None:  # kind "none" has neither
                block -= self.mean
                block /= self.std
            out[i : i + _BLOCK_ROWS, :d] = block
        return out

    def undo(self, x: np.ndarray) -> np.ndarray:
        """(n, features) normalized values -> the raw values, in float64 (for pictures of inputs)."""
        raw = np.asarray(x, dtype=np.float64)
        if self.mean is not None and self.std is not None:
            raw = raw * self.std + self.mean
        return raw

    def to_json(self) -> dict[str, Any]:
        """The JSON part (arrays of ``"per_feature"`` are stored as tensors, not here)."""
        if self.kind == "global":
            return {"kind": "global", "mean": self.mean, "std": self.std}
        return {"kind": self.kind}


def _finite_scalar(value: object) -> float | None:
    """``value`` as a float if it is a finite real number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return None
    number = float(value)
    return number if math.isfinite(number) else None
