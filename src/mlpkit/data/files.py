"""The user's own data files: ``.npz``, ``.csv``, a folder of images, a pair of IDX files.

Which reader applies follows from the path alone: the suffixes ``.npz`` and ``.csv``; a folder
holding MNIST's training file names is IDX, any other folder one subfolder of images per class;
any other file an IDX images file. Each reader lives in its own module; the rules they share
(finite numbers, usable labels, two classes, read-only arrays, one-line errors that name the
file and the row or column) in `mlpkit.data.file_checks`.
"""

from __future__ import annotations

from pathlib import Path

from mlpkit.core.errors import ConfigError, DataError
from mlpkit.data.csv_table import read_csv_dataset
from mlpkit.data.dataset import Dataset
from mlpkit.data.idx_files import is_idx_folder, read_idx_folder, read_idx_pair
from mlpkit.data.image_folder import read_image_folder
from mlpkit.data.npz_file import read_npz_dataset

__all__ = ["FILE_KINDS", "load_file_dataset"]

#: What a path may hold, for messages.
FILE_KINDS = (
    ".npz (arrays x, y), .csv (a header row, a label column), a folder of images with one subfolder per class,"
    " or IDX files"
)


def load_file_dataset(path: str | Path, *, label_column: str = "label", labels: str | Path | None = None) -> Dataset:
    """Inputs and labels read from ``path`` (a file or a folder); a test part only from an IDX folder.

    Parameters
    ----------
    path : str or Path
        - ``*.npz``: arrays ``x`` (n, ...) numbers and ``y`` (n,) integer or string labels
          (`mlpkit.data.npz_file`);
        - ``*.csv``: a header row, the label column, every other column a number
          (`mlpkit.data.csv_table`);
        - a folder in MNIST's layout (``train-images-idx3-ubyte[.gz]`` and its labels,
          optionally the ``t10k-`` pair): a training and a test part (`mlpkit.data.idx_files`);
        - any other folder: one subfolder of images per class (`mlpkit.data.image_folder`);
        - any other file: an IDX images file, with its labels file beside it.
    label_column : str
        For a CSV file: the header name of the label column.
    labels : str, Path or None
        For an IDX images file: its labels file (default: the name with "images" -> "labels"
        and "idx3" -> "idx1").

    Returns
    -------
    Dataset
        Read-only arrays: uint8 inputs stay uint8, other numbers become float64 (all finite);
        integer labels as int64, other labels as strings. Named by ``path``.

    Raises
    ------
    DataError
        One line naming the file, the row (a CSV line as a text editor numbers it, an array
        row) or column, and the problem.
    ConfigError
        If ``labels`` is given for anything but an IDX images file.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    is_idx_file = suffix not in (".npz", ".csv") and not path.is_dir()
    if labels is not None and not is_idx_file:
        raise ConfigError(f"data.labels names the labels of an IDX images file; {path} is not one")
    if suffix == ".npz":
        return read_npz_dataset(path)
    if suffix == ".csv":
        return read_csv_dataset(path, label_column=label_column)
    if path.is_dir():
        if is_idx_folder(path):
            return read_idx_folder(path)
        return read_image_folder(path)
    try:
        return read_idx_pair(path, labels)
    except DataError as exc:
        if str(exc).startswith(f"{path}: wrong magic"):
            raise DataError(f"{exc}; a data set is {FILE_KINDS}") from None
        raise
