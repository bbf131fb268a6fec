"""A data set saved by NumPy: ``np.savez(path, x=inputs, y=labels)``.

The archive is read without pickle (``allow_pickle=False``): an object array would run code
from the file, so it is refused with a message that says how to save the labels instead.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from mlpkit.core.errors import DataError
from mlpkit.data.dataset import Dataset
from mlpkit.data.file_checks import listing, one_line, regular_file, user_dataset

__all__ = ["read_npz_dataset"]

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a member first, or the end record of an empty archive
_HOW = "save it with np.savez(path, x=inputs, y=labels)"


def read_npz_dataset(path: str | Path) -> Dataset:
    """Inputs ``x`` (n, ...) and labels ``y`` (n,) from an ``.npz`` archive; no test part.

    Parameters
    ----------
    path : str or Path
        The archive (``np.savez`` or ``np.savez_compressed``).

    Returns
    -------
    Dataset
        ``input_shape`` is ``x.shape[1:]``; uint8 inputs stay uint8, other numbers become float64.

    Raises
    ------
    DataError
        Naming the file (and the array, row or feature) if it is not such an archive, lacks
        ``x`` or ``y``, holds pickled objects, or breaks the rules of `mlpkit.data.file_checks`.
    """
    path = Path(path)
    regular_file(path, "an .npz archive")
    try:
        with path.open("rb") as f:
            magic = f.read(4)
        if not magic:
            raise DataError(f"{path}: empty file")
        if magic not in _ZIP_MAGIC:
            raise DataError(f"{path}: not an .npz archive (a zip of .npy arrays); {_HOW}")
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in ("x", "y") if key not in archive.files]
            if missing:
                names = " or ".join(repr(k) for k in missing)
                raise DataError(f"{path}: no array {names} (it holds {listing(archive.files)}); {_HOW}")
            x, y = _array(path, archive, "x"), _array(path, archive, "y")
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({one_line(exc.strerror or str(exc))})") from None
    except (zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: corrupt or truncated .npz archive ({one_line(str(exc))})") from None

    def locate(row: int, feature: int | None) -> str:
        if feature is None:
            return f"array 'y' row {row}"
        at = np.unravel_index(feature, x.shape[1:])
        return f"array 'x' row {row}, feature {tuple(int(i) for i in at) if len(at) > 1 else int(at[0])}"

    return user_dataset(str(path), x, y, locate=locate)


def _array(path: Path, archive: np.lib.npyio.NpzFile, key: str) -> np.ndarray:
    try:
        return archive[key]
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            fix = "np.asarray(labels, dtype=str)" if key == "y" else "a numeric array"
            raise DataError(
                f"{path}: array {key!r} holds Python objects (pickled), which mlpkit never loads; save it as {fix}"
            ) from None
        raise DataError(f"{path}: array {key!r} is unreadable ({one_line(str(exc))})") from None
