"""The rules every reader of the user's own files applies (see `mlpkit.data.files`).

Each reader only turns its source into arrays; the checks live here once, so an ``.npz``, a CSV,
an image folder and an IDX pair are held to the same rules and fail the same way: one
`DataError` line that names the file, where the fault is (a CSV line and column, an array row,
an image) and what it is. Finding *where* can be costly (a CSV's line numbers), so readers pass
a `Locate` function that is only called once a fault has been found.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from mlpkit.core.errors import DataError
from mlpkit.data.dataset import Dataset

__all__ = [
    "Locate",
    "checked_arrays",
    "integer_labels",
    "listing",
    "one_line",
    "regular_file",
    "show",
    "user_dataset",
]

#: (row, feature index or None for the label) -> where that value sits in the source,
#: e.g. ``"line 7, column 3 'b'"``; called only to word an error.
Locate = Callable[[int, int | None], str]

_LISTED = 12  # names shown in a message before "and N more"
_BLOCK_ROWS = 8192  # rows checked for finiteness at a time (bounds the temporary mask's memory)
_INT64_MAX = np.iinfo(np.int64).max


def show(value: Any) -> str:
    """A value from a file as a message shows it: quoted strings, plain numbers, one line."""
    if isinstance(value, np.generic):
        value = value.item()
    return one_line(repr(value))


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) as one space."""
    return " ".join(text.split())


def listing(names: Iterable[str]) -> str:
    """Names for a message: the first few, quoted, then how many more."""
    names = list(names)
    shown = ", ".join(show(n) for n in names[:_LISTED])
    return shown + (f" and {len(names) - _LISTED} more" if len(names) > _LISTED else "") if names else "nothing"


def regular_file(path: Path, expected: str) -> Path:
    """``path`` if it is a regular file (links followed); else a DataError saying what is there.

    Checked before opening, so a folder or a named pipe in place of a file gives a clear
    message instead of an ``IsADirectoryError`` or a hang.
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise DataError(f"{path}: no such file (expected {expected})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(mode):
        raise DataError(f"{path}: is a folder, expected {expected}")
    if not stat.S_ISREG(mode):
        raise DataError(f"{path}: is not a regular file, expected {expected}")
    return path


def _inputs(x: np.ndarray, name: str, locate: Locate) -> np.ndarray:
    """uint8 as it is; other numbers as float64, every value finite."""
    if x.dtype == np.uint8:
        return x
    if x.dtype.kind not in "biuf":
        raise DataError(f"{name}: inputs are of type {x.dtype}, expected numbers")
    x = x.astype(np.float64, copy=False)
    flat = x.reshape(len(x), -1)
    for start in range(0, len(flat), _BLOCK_ROWS):
        finite = np.isfinite(flat[start : start + _BLOCK_ROWS])
        if not finite.all():
            row, feature = (int(i) for i in np.argwhere(~finite)[0])
            row += start
            raise DataError(f"{name}: {locate(row, feature)}: {show(flat[row, feature])} is not a finite number")
    return x


_INTEGER = re.compile(r"[+-]?[0-9]+")


def integer_labels(strings: np.ndarray) -> np.ndarray | None:
    """int64 labels when every string (surrounding spaces aside) is a decimal integer, else None."""
    values = [s.strip() for s in strings.tolist()]
    if not all(_INTEGER.fullmatch(s) for s in values):
        return None
    numbers = [int(s) for s in values]
    if numbers and max(abs(n) for n in numbers) > _INT64_MAX:
        return None
    return np.asarray(numbers, dtype=np.int64).reshape(strings.shape)


def _labels(y: np.ndarray, name: str, locate: Locate) -> np.ndarray:
    """int64 for integers (and integral floats), str for strings; anything else refused."""
    kind = y.dtype.kind
    if kind == "b" or kind == "i":
        return y.astype(np.int64)
    if kind == "u":
        if len(y) and int(y.max()) > _INT64_MAX:
            row = int(np.argmax(y))
            raise DataError(f"{name}: {locate(row, None)}: label {show(y[row])} is too large")
        return y.astype(np.int64)
    if kind == "f":
        bad = ~np.isfinite(y) | (np.abs(y) > 2.0**62)
        bad[~bad] = y[~bad] != np.round(y[~bad])
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(
                f"{name}: {locate(row, None)}: label {show(y[row])} is not an integer (labels are integers or strings)"
            )
        return y.astype(np.int64)
    if kind == "S":
        try:
            y = np.char.decode(y, "utf-8")
        except UnicodeDecodeError:
            raise DataError(f"{name}: labels are bytes that are not UTF-8 text") from None
        kind = "U"
    if kind == "U":
        empty = np.char.str_len(np.char.strip(y)) == 0
        if empty.any():
            raise DataError(f"{name}: {locate(int(np.argmax(empty)), None)}: empty label")
        return y
    raise DataError(f"{name}: labels are of type {y.dtype}, expected integers or strings")


def checked_arrays(name: str, x: Any, y: Any, *, locate: Locate) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and labels that follow the rules, read-only; a DataError for the first fault.

    Parameters
    ----------
    name : str
        The file, as messages name it.
    x : array-like
        (n, *input_shape) inputs: uint8 stays uint8, other numbers become float64 and must be finite.
    y : array-like
        (n,) or (n, 1) labels: integers (or integral floats) become int64; strings stay strings.
    locate : Locate
        Words where a row (and feature) sits in the source.

    Returns
    -------
    x, y : np.ndarray
        Read-only.

    Raises
    ------
    DataError
        If there are no rows or no features, the counts differ, an input is not a finite number,
        or a label is empty or of no usable type.
    """
    x, y = np.asarray(x), np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{name}: labels have shape {y.shape}, expected one label per row")
    if x.ndim < 2:
        raise DataError(f"{name}: inputs have shape {x.shape}, expected (rows, features...)")
    if len(x) != len(y):
        raise DataError(f"{name}: {len(x)} inputs but {len(y)} labels")
    if len(x) == 0:
        raise DataError(f"{name}: no rows (empty)")
    if x[0].size == 0:
        raise DataError(f"{name}: inputs have no features (shape {x.shape})")
    x, y = _inputs(x, name, locate), _labels(y, name, locate)
    for a in (x, y):
        a.flags.writeable = False
    return x, y


def user_dataset(name: str, x: Any, y: Any, *, locate: Locate, classes: tuple[Any, ...] | None = None) -> Dataset:
    """A training part (no test part) from `checked_arrays`, which must hold at least two classes.

    Parameters
    ----------
    name : str
        The file, as messages and `Dataset.name` name it.
    x, y, locate
        As for `checked_arrays`.
    classes : tuple or None
        Every class in order, when the source defines them (an image folder's subfolders).

    Raises
    ------
    DataError
        As `checked_arrays`, or if every row has the same label.
    """
    x, y = checked_arrays(name, x, y, locate=locate)
    distinct = np.unique(y)
    if len(distinct) < 2:
        raise DataError(f"{name}: every row has the label {show(distinct[0])}; a classifier needs at least two classes")
    return Dataset(name=name, x_train=x, y_train=y, input_shape=x.shape[1:], classes=classes)
