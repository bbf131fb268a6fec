"""Safe file writing: a file under its final name is always complete.

Everything is written to a temporary file in the same directory, flushed and fsynced,
then moved over the final name with ``os.replace`` (atomic on POSIX and Windows).
A failed write (full disk, read-only file system, a file where a folder should be) leaves
the previous version under the final name untouched and raises :class:`RunIOError` naming
the final path, never the temporary one.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np

from mlpkit.core.errors import MlpkitError

# mkstemp creates files readable by their owner only; give final files the usual mode instead.
_UMASK = os.umask(0)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK
#: The time stamp of every member of the .npz files written here: equal arrays give equal bytes
#: (so equal runs give equal files and checksums), whenever they were written.
_ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)


class RunIOError(MlpkitError):
    """The operating system refused to write a file (full disk, read-only, no such folder ...).

    Parameters
    ----------
    path : Path
        The file that could not be written (its final name).
    error : OSError
        What the operating system said; its ``strerror`` is in the message.
    """

    def __init__(self, path: Path, error: OSError) -> None:
        self.path = path
        self.errno = error.errno
        self.strerror = error.strerror or str(error)
        super().__init__(f"cannot write {path}: {self.strerror}")


def _write_payload(fh: IO[bytes], data: bytes) -> None:
    """The one low-level write of every atomic file (one function, so that tests can make it
    fail as a full disk would)."""
    fh.write(data)
    fh.flush()
    os.fsync(fh.fileno())


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see the module docstring).

    Raises
    ------
    RunIOError
        If the operating system refuses (the previous file under ``path``, if any, is kept).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise RunIOError(path, exc) from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            if hasattr(os, "fchmod"):
                os.fchmod(fh.fileno(), _FILE_MODE)
            _write_payload(fh, data)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise RunIOError(path, exc) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def fsync_dir(directory: Path) -> None:
    """Persist a rename itself (POSIX); a no-op where directories can't be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any, *, indent: int | None = 1) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=indent, allow_nan=True) + "\n")


def npz_bytes(arrays: dict[str, np.ndarray], *, compress: bool = False) -> bytes:
    """``arrays`` as the bytes of an .npz file, the layout of ``np.savez`` (zip64 members
    ``NAME.npy``), with a fixed time stamp: equal arrays always give equal bytes."""
    compression = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, mode="w", compression=compression, allowZip64=True) as archive:
        for name, value in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE_TIME)
            info.compress_type = compression
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)
    return buf.getvalue()


def atomic_save_npz(path: str | Path, arrays: dict[str, np.ndarray], *, compress: bool = False) -> Path:
    """Write arrays as .npz (no pickled objects: object arrays are refused)."""
    for name, arr in arrays.items():
        if np.asarray(arr).dtype == object:
            raise TypeError(f"array {name!r} has dtype object; only plain numeric arrays are saved")
    return atomic_write_bytes(path, npz_bytes(arrays, compress=compress))
