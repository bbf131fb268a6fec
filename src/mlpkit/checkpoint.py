"""Checkpoints in a safe format: an .npz archive of plain arrays plus a JSON document.

Loading never executes code: ``np.load(..., allow_pickle=False)`` refuses object arrays,
and everything that is not an array lives in JSON. A nested state (dicts, lists, arrays,
numbers, strings, None) is flattened: each array is stored under its own key and replaced
in the JSON by ``{"__array__": key}``.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CheckpointError
from .fileio import atomic_save_npz

FORMAT = "mlpkit-checkpoint"
VERSION = 1
META_KEY = "__meta__"


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


def _unflatten(obj: Any, archive: Any) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__array__"}:
            return archive[obj["__array__"]]
        return {k: _unflatten(v, archive) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unflatten(v, archive) for v in obj]
    return obj


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Atomically write ``state`` (nested dicts/lists of arrays and JSON scalars)."""
    arrays: dict[str, np.ndarray] = {}
    doc = {"format": FORMAT, "version": VERSION, "state": _flatten(state, arrays)}
    arrays[META_KEY] = np.frombuffer(json.dumps(doc).encode("utf-8"), dtype=np.uint8)
    return atomic_save_npz(path, arrays)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`; anything else is a CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if META_KEY not in archive.files:
                raise CheckpointError(f"checkpoint {path} has no {META_KEY} entry: not an mlpkit checkpoint")
            arrays = {k: archive[k] for k in archive.files}
    except CheckpointError:
        raise
    except ValueError as exc:  # object arrays need pickle: refused
        raise CheckpointError(f"checkpoint {path} is refused: it holds pickled objects ({exc})") from None
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, zipfile.LargeZipFile) as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated: {exc}") from None
    except Exception as exc:  # any other decoding failure of a damaged archive
        raise CheckpointError(f"checkpoint {path} could not be read: {type(exc).__name__}: {exc}") from None
    meta = arrays.pop(META_KEY)
    try:
        doc = json.loads(meta.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"checkpoint {path} has unreadable metadata: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} is not an mlpkit checkpoint (format {doc.get('format') if isinstance(doc, dict) else None!r})")
    if doc.get("version") != VERSION:
        raise CheckpointError(f"checkpoint {path} has version {doc.get('version')}, this mlpkit reads {VERSION}")
    try:
        return _unflatten(doc["state"], arrays)
    except KeyError as exc:
        raise CheckpointError(f"checkpoint {path} refers to a missing array {exc}") from None
