"""Checkpoints in a safe format: an .npz archive of plain arrays plus a JSON document.

Loading never executes code: members are read by a small .npy reader that refuses object
dtypes (pickles) and anything but uncompressed ``.npy`` members, and checks each header's
declared size against the member before allocating (so a small file cannot make the loader
allocate much more than its own size); everything that is not an array lives in JSON, and
the zip CRC-32 of every member is verified. A nested state (dicts, lists, arrays,
numbers, strings, None) is flattened: each array is stored under its own key and replaced
in the JSON by ``{"__array__": key}``. The same reader (`read_npz`) reads a run's weights
and predictions.
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from mlpkit.core.errors import CheckpointError
from mlpkit.core.fileio import atomic_save_npz

FORMAT = "mlpkit-checkpoint"
VERSION = 1
META_KEY = "__meta__"
_CHUNK = 1 << 20  # bytes read at a time into a preallocated array
#: Deflate expands its input at most ~1032-fold: a compressed member can justify no more.
MAX_DEFLATE_RATIO = 1032
#: Default bound on what the compressed members of one archive may inflate to.
MAX_INFLATED_BYTES = 256 * 2**20


def _flatten(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(obj, np.ndarray):
        key = f"a{len(arrays)}"
        arrays[key] = obj
        return {"__array__": key}
    if isinstance(obj, dict):
        return {str(k): _flatten(v, arrays) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_flatten(v, arrays) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _unflatten(obj: Any, arrays: dict[str, np.ndarray], path: Path) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__array__"}:
            key = obj["__array__"]
            if not isinstance(key, str) or key not in arrays:
                raise CheckpointError(f"checkpoint {path} refers to a missing array {key!r}")
            return arrays[key]
        return {k: _unflatten(v, arrays, path) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unflatten(v, arrays, path) for v in obj]
    return obj


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Atomically write ``state`` (nested dicts/lists of arrays and JSON scalars)."""
    arrays: dict[str, np.ndarray] = {}
    doc = {"format": FORMAT, "version": VERSION, "state": _flatten(state, arrays)}
    arrays[META_KEY] = np.frombuffer(json.dumps(doc).encode("utf-8"), dtype=np.uint8)
    return atomic_save_npz(path, arrays)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`; anything else is a CheckpointError.

    Nothing in the file is executed (no pickle), and nothing is allocated that the file's own
    size does not justify: every member must be an uncompressed ``.npy`` whose header declares
    exactly as many bytes as the member holds, checked before the array is allocated.
    """
    path = Path(path)
    arrays = read_npz(path)
    try:
        meta = arrays.pop(META_KEY, None)
        if meta is None:
            raise CheckpointError(f"checkpoint {path} has no {META_KEY} entry: not an mlpkit checkpoint")
        if meta.dtype != np.uint8 or meta.ndim != 1:
            raise CheckpointError(f"checkpoint {path} has a malformed {META_KEY} entry ({meta.dtype}, {meta.shape})")
        try:
            doc = json.loads(meta.tobytes().decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {path} has unreadable metadata: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            found = doc.get("format") if isinstance(doc, dict) else None
            raise CheckpointError(f"checkpoint {path} is not an mlpkit checkpoint (format {found!r})")
        if doc.get("version") != VERSION:
            raise CheckpointError(f"checkpoint {path} has version {doc.get('version')!r}, this mlpkit reads {VERSION}")
        if "state" not in doc:
            raise CheckpointError(f"checkpoint {path} has no state")
        return _unflatten(doc["state"], arrays, path)
    except CheckpointError:
        raise
    except RecursionError:
        raise CheckpointError(f"checkpoint {path} has metadata nested too deeply") from None
    except Exception as exc:  # any other decoding failure of a damaged archive
        raise CheckpointError(f"checkpoint {path} could not be read: {type(exc).__name__}: {exc}") from None


def read_npz(
    path: str | Path, *, what: str = "checkpoint", compressed: bool = False, max_bytes: int = MAX_INFLATED_BYTES
) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` archive at ``path``, read safely; anything else is a CheckpointError.

    Nothing is executed (object dtypes, i.e. pickles, are refused), every member's CRC-32 is
    verified, and each member's declared size is checked against what the file can hold before
    its array is allocated.

    Parameters
    ----------
    path : str or Path
        The archive.
    what : str
        What the file is, for messages (``"checkpoint"``, ``"weights file"``).
    compressed : bool
        Accept deflate-compressed members (as ``np.savez_compressed`` writes); each may then
        inflate to at most `MAX_DEFLATE_RATIO` times its compressed size, and all of them
        together to at most ``max_bytes``. Otherwise members must be stored uncompressed.
    max_bytes : int
        Bound on the inflated size of compressed members.

    Returns
    -------
    dict of str to np.ndarray
        By member name without ``.npy``.

    Raises
    ------
    CheckpointError
        Naming the file, if it is missing, not a zip archive, truncated, corrupt or unsafe.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} {path} does not exist")
    try:
        return _read_arrays(path, what, compressed, max_bytes)
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise CheckpointError(f"{what} {path} is corrupt or truncated: {exc}") from None
    except Exception as exc:  # any other decoding failure of a damaged archive
        raise CheckpointError(f"{what} {path} could not be read: {type(exc).__name__}: {exc}") from None


def _read_arrays(path: Path, what: str, compressed: bool, max_bytes: int) -> dict[str, np.ndarray]:
    """Every member of the .npz at ``path``, each checked before anything is allocated for it."""
    size = path.stat().st_size
    arrays: dict[str, np.ndarray] = {}
    inflated = 0
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            name = info.filename
            if not name.endswith(".npy"):
                raise CheckpointError(f"{what} {path} is refused: member {name!r} is not a .npy array")
            if info.compress_type == zipfile.ZIP_STORED:
                limit = size
            elif compressed and info.compress_type == zipfile.ZIP_DEFLATED:
                limit = min(info.compress_size * MAX_DEFLATE_RATIO, max_bytes - inflated)
                inflated += info.file_size
            else:
                raise CheckpointError(
                    f"{what} {path} is refused: member {name!r} is compressed ({what}s are stored uncompressed)"
                )
            if info.file_size > limit:
                whole = "the whole file" if limit == size else "its compressed size can justify or the limit allows"
                raise CheckpointError(
                    f"{what} {path} is corrupt: member {name!r} claims {info.file_size}"
                    f" bytes, more than {whole} ({limit})"
                )
            key = name[:-4]
            if key in arrays:
                raise CheckpointError(f"{what} {path} is corrupt: member {name!r} appears twice")
            with archive.open(info) as fp:
                arrays[key] = _read_npy(fp, info.file_size, f"{what} {path} member {name!r}")
    return arrays


def _read_npy(fp: Any, member_size: int, what: str) -> np.ndarray:
    """One .npy array from ``fp``; object dtypes (pickles) and size mismatches are refused."""
    from numpy.lib import format as npy

    try:
        version = npy.read_magic(fp)
    except ValueError:
        raise CheckpointError(f"{what} is not a .npy array (bad magic): refused") from None
    if version == (1, 0):
        shape, fortran, dtype = npy.read_array_header_1_0(fp)
    elif version == (2, 0):
        shape, fortran, dtype = npy.read_array_header_2_0(fp)
    else:
        raise CheckpointError(f"{what} has unsupported .npy version {version}")
    if dtype.hasobject:
        raise CheckpointError(f"{what} is refused: it holds pickled Python objects ({dtype})")
    count = math.prod(shape)
    nbytes = count * dtype.itemsize
    if fp.tell() + nbytes != member_size:
        raise CheckpointError(
            f"{what} is corrupt: its header declares {nbytes} data bytes, the member holds {member_size - fp.tell()}"
        )
    flat = np.empty(count, dtype=dtype)
    if nbytes:
        raw = flat.view(np.uint8)
        pos = 0
        while pos < nbytes:
            chunk = fp.read(min(_CHUNK, nbytes - pos))
            if not chunk:
                raise CheckpointError(f"{what} is truncated")
            raw[pos : pos + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
            pos += len(chunk)
    if fp.read(1):  # also makes zipfile verify the member's CRC-32
        raise CheckpointError(f"{what} has trailing bytes")
    return flat.reshape(shape, order="F" if fortran else "C")
