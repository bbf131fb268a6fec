"""A data set in a CSV file: a header row, one named label column, every other column a number.

Why two passes: NumPy's C parser (`np.loadtxt`) reads an MNIST-sized file (60,000 x 785) several
times faster than the csv module converting field by field, but its errors speak of rows in
its own count. So the fast pass reads, and only when it fails (or a check fails) does a slow
pass with the csv module find the first fault and its line as a text editor numbers it. The
label column goes through a converter that numbers each distinct label (one Python call per
row, not per value), so ragged rows are still caught and labels may be any text.
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import numpy as np

from mlpkit.core.errors import DataError
from mlpkit.data.dataset import Dataset
from mlpkit.data.file_checks import integer_labels, listing, one_line, regular_file, show, user_dataset

__all__ = ["read_csv_dataset"]

_QUOTE = '"'


def read_csv_dataset(path: str | Path, *, label_column: str = "label") -> Dataset:
    """Inputs (n, features) and labels from a CSV file with a header row; no test part.

    Comma-separated, UTF-8 (a byte-order mark is fine), fields optionally in double quotes;
    empty lines are skipped.

    Parameters
    ----------
    path : str or Path
        The file.
    label_column : str
        The header name of the label column. Labels that are all integers become int64, any
        other labels stay strings (surrounding spaces removed).

    Returns
    -------
    Dataset
        float64 inputs of ``input_shape`` (features,), in the header's column order.

    Raises
    ------
    DataError
        Naming the file, the line (as a text editor shows it) and column, for an empty file, a
        missing label column (listing the columns), a ragged row, an empty or non-numeric
        value, NaN or infinity, an empty label, a single class, text that is not UTF-8, or a
        file that cannot be read.
    """
    path = Path(path)
    regular_file(path, "a .csv file")
    header = _header(path)
    if label_column not in header:
        raise DataError(
            f"{path}: no column {label_column!r} (set data.label_column); the columns are {listing(header)}"
        )
    if header.count(label_column) > 1:
        raise DataError(f"{path}: the label column {label_column!r} appears {header.count(label_column)} times")
    if len(header) < 2:
        raise DataError(f"{path}: no feature columns beside the label column {label_column!r}")
    label = header.index(label_column)
    features = [c for c in range(len(header)) if c != label]
    codes: dict[str, int] = {}

    def code(text: str) -> int:
        return codes.setdefault(text.strip(), len(codes))

    try:
        with _text(path) as f:
            next(csv.reader(f))  # the header
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # empty lines and an empty table are handled here
                table = np.loadtxt(
                    f,
                    delimiter=",",
                    quotechar=_QUOTE,
                    comments=None,
                    dtype=np.float64,
                    ndmin=2,
                    converters={label: code},
                )
    except ValueError:  # a ragged row, an empty or non-numeric value (or a UnicodeDecodeError)
        raise DataError(f"{path}: {_first_fault(path, header, label)}") from None
    if len(table) == 0:
        raise DataError(f"{path}: no data rows under the header")
    names = list(codes)
    y_codes = table[:, label].astype(np.intp)
    x = np.delete(table, label, axis=1)
    del table
    strings = np.asarray(names, dtype=str)
    labels = integer_labels(strings)
    y = (strings if labels is None else labels)[y_codes]

    def locate(row: int, feature: int | None) -> str:
        column = label if feature is None else features[feature]
        return f"line {_line_of_row(path, row)}, column {column + 1} {show(header[column])}"

    return user_dataset(str(path), x, y, locate=locate)


@contextmanager
def _text(path: Path) -> Iterator[TextIO]:
    """The file as UTF-8 text (a byte-order mark dropped), with read errors as DataError."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            yield f
    except UnicodeDecodeError:
        raise DataError(f"{path}: {_not_utf8(path)}") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({one_line(exc.strerror or str(exc))})") from None


def _header(path: Path) -> list[str]:
    with _text(path) as f:
        try:
            header = next(csv.reader(f), None)
        except csv.Error as exc:
            raise DataError(f"{path}: line 1: {one_line(str(exc))}") from None
    if header is None:
        raise DataError(f"{path}: empty file")
    if not header:
        raise DataError(f"{path}: line 1: empty header (the first line must name the columns)")
    return [name.strip() for name in header]


def _records(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(first line number, fields) of every data record that is not an empty line."""
    with _text(path) as f:
        reader = csv.reader(f)
        try:
            next(reader)
            start = reader.line_num + 1
            for fields in reader:
                if fields:
                    yield start, fields
                start = reader.line_num + 1
        except csv.Error as exc:
            raise DataError(f"{path}: line {reader.line_num}: {one_line(str(exc))}") from None


def _line_of_row(path: Path, row: int) -> int:
    """The line on which data row ``row`` (counted from 0, empty lines skipped) starts."""
    for i, (line, _) in enumerate(_records(path)):
        if i == row:
            return line
    raise AssertionError(f"{path} has no data row {row}")  # pragma: no cover - rows come from this file


def _first_fault(path: Path, header: list[str], label: int) -> str:
    """Where and what the first value NumPy could not read is, found with the csv module."""
    for line, fields in _records(path):
        if len(fields) != len(header):
            count = f"{len(fields)} value{'s' if len(fields) != 1 else ''}"
            return f"line {line}: {count}, but the header names {len(header)} columns (a ragged row)"
        for column, text in enumerate(fields):
            if column == label:
                continue
            where = f"line {line}, column {column + 1} {show(header[column])}"
            if not text.strip():
                return f"{where}: empty value"
            if not _is_number(text):
                return f"{where}: {show(text)} is not a number"
    return "unreadable CSV (NumPy's parser and the csv module disagree on it)"  # pragma: no cover


def _is_number(text: str) -> bool:
    """Whether NumPy's parser reads ``text`` as a float (Python's also takes "1_000" and non-ASCII digits)."""
    if "_" in text or not text.isascii():
        return False
    try:
        float(text)
    except ValueError:
        return False
    return True


def _not_utf8(path: Path) -> str:
    with path.open("rb") as f:
        for number, line in enumerate(f, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                byte = line[exc.start : exc.start + 1].hex()
                return f"line {number}: not UTF-8 text (byte 0x{byte}); save the file as UTF-8"
    return "not UTF-8 text; save the file as UTF-8"  # pragma: no cover
