"""The user's own data files: ``.npz``, ``.csv``, a folder of images, a pair of IDX files.

Transitional: readers arrive with issue 12's data work.
"""

from __future__ import annotations

from pathlib import Path

from mlpkit.core.errors import DataError
from mlpkit.data.dataset import Dataset

__all__ = ["load_file_dataset"]


def load_file_dataset(path: str | Path, *, label_column: str = "label", labels: str | Path | None = None) -> Dataset:
    """Inputs and labels read from ``path`` (a file or a folder); no test part."""
    raise DataError(f"{path}: reading your own files is not supported yet")
