"""scikit-learn's 8x8 handwritten digits (1,797 images, pixel values 0..16): no download.

Why it is registered: it is the data set every scikit-learn user tries first, small enough to
train on in a second, and it ships inside scikit-learn.
"""

from __future__ import annotations

import numpy as np

from mlpkit.core.errors import DataError
from mlpkit.data.dataset import Dataset

__all__ = ["DIGITS_SHAPE", "load_digits_dataset"]

DIGITS_SHAPE = (8, 8)


def load_digits_dataset() -> Dataset:
    """The digits as uint8 (1797, 8, 8) inputs in 0..16 and integer labels 0..9; no test part.

    Raises
    ------
    DataError
        If scikit-learn cannot be imported.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - scikit-learn is a dependency
        raise DataError(f"the digits data set ships with scikit-learn, which cannot be imported: {exc}") from None
    bunch = load_digits()
    images = np.asarray(bunch.images)
    x = images.astype(np.uint8)
    if not np.array_equal(x, images):  # pragma: no cover - a changed scikit-learn
        raise DataError("scikit-learn's digits are no longer integers 0..16")
    x.flags.writeable = False
    y = np.asarray(bunch.target, dtype=np.int64)
    y.flags.writeable = False
    return Dataset(name="digits", x_train=x, y_train=y, input_shape=DIGITS_SHAPE, classes=tuple(range(10)))
