"""A run's trained weights on disk (``weights.npz``): parameters by name plus what is needed to
use them (architecture, dtype, normalization), as plain arrays and JSON; never a pickle.

The file carries its own architecture, so it can be loaded without its run's config; read
back, it is validated as a checkpoint is (`mlpkit.train.checkpoint.read_npz`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlpkit.core.errors import CheckpointError, MlpkitError
from mlpkit.core.fileio import atomic_save_npz
from mlpkit.nn.mlp import BIAS_MODES, DTYPES
from mlpkit.runs.footprint import parameter_count
from mlpkit.runs.schema import WEIGHTS_FORMAT
from mlpkit.train.checkpoint import read_npz

if TYPE_CHECKING:
    from mlpkit.data.normalize import Normalization
    from mlpkit.nn.mlp import MLP
    from mlpkit.runs.config import Config

__all__ = ["load_weights", "save_weights"]

META_KEY = "__meta__"
VERSION = 1


def save_weights(path: str | Path, model: MLP, *, normalization: Normalization, config: dict[str, Any]) -> Path:
    """Atomically write ``model``'s parameters and metadata to ``path``.

    Parameters
    ----------
    path : str or Path
        The ``.npz`` file to write.
    model : MLP
        The trained model.
    normalization : Normalization
        The normalization its inputs need: a global one is recorded as ``mean`` and ``std``;
        for the other kinds those are 0 and 1 and ``normalization`` names the kind (the run's
        ``model.safetensors`` holds the statistics).
    config : dict
        The run's config as a dict (`Config.to_dict`); its ``model`` table is recorded.

    Returns
    -------
    Path
    """
    meta = {
        "format": WEIGHTS_FORMAT,
        "version": VERSION,
        "model": config["model"],
        "dtype": model.dtype.name,
        "n_features": model.n_features,
        "n_classes": model.n_classes,
        "mean": normalization.mean if normalization.kind == "global" else 0.0,
        "std": normalization.std if normalization.kind == "global" else 1.0,
    }
    if normalization.kind != "global":
        meta["normalization"] = normalization.kind
    arrays = dict(model.state_dict())
    arrays[META_KEY] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    return atomic_save_npz(path, arrays)


def load_weights(path: str | Path, *, config: Config | None = None) -> tuple[MLP, dict[str, Any]]:
    """Rebuild the model saved by :func:`save_weights`, trusting nothing in the file.

    The archive is read by the checkpoints' bounded reader (no pickle, sizes checked before
    allocating); the metadata must describe a model whose parameters are exactly the arrays
    present, so a tampered architecture cannot make the loader allocate more than the file
    holds; every weight must have the recorded dtype and be finite.

    Parameters
    ----------
    path : str or Path
        A ``weights.npz`` file.
    config : Config or None
        If given, the weights must have been saved for its model (layers, activation, bias,
        dtype); a disagreement is refused, naming the keys.

    Returns
    -------
    (MLP, dict)
        The model and the file's metadata (architecture, dtype, mean, std).

    Raises
    ------
    CheckpointError
        If the file is unreadable or unsafe, its metadata malformed, its arrays do not fit
        the model it describes, a weight is not finite, or it disagrees with ``config``.
    """
    from mlpkit.nn.mlp import MLP

    path = Path(path)
    arrays = read_npz(path, what="weights file")
    meta = _meta(arrays.pop(META_KEY, None), path)
    m = meta["model"]
    hidden = [int(h) for h in m["hidden"]]
    expected = parameter_count(hidden, n_features=meta["n_features"], n_classes=meta["n_classes"], bias=m["bias"])
    present = sum(a.size for a in arrays.values())
    if present != expected:
        raise CheckpointError(
            f"weights file {path} does not fit the model it describes: {expected} parameters"
            f" for hidden {hidden}, the file holds {present}"
        )
    dtype = np.dtype(meta["dtype"])
    for name, array in arrays.items():
        if array.dtype != dtype:
            raise CheckpointError(f"weights file {path}: {name} is {array.dtype}, the file says {dtype}")
        if not np.isfinite(array).all():
            raise CheckpointError(f"weights file {path}: {name} holds NaN or infinite values; refused")
    if config is not None:
        _check_config(path, meta, config)
    try:
        model = MLP(
            hidden,
            n_features=meta["n_features"],
            n_classes=meta["n_classes"],
            activation=m["activation"],
            bias=m["bias"],
            dtype=meta["dtype"],
        )
    except MlpkitError as exc:
        raise CheckpointError(f"weights file {path} describes a model mlpkit cannot build: {exc}") from None
    try:
        model.load_state_dict(arrays)
    except CheckpointError as exc:
        raise CheckpointError(f"weights file {path}: {exc}") from None
    return model, meta


def _meta(raw: np.ndarray | None, path: Path) -> dict[str, Any]:
    """The metadata document, checked field by field."""
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
        raise CheckpointError(f"weights file {path} has no readable {META_KEY} entry: not an mlpkit weights file")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"weights file {path} has unreadable metadata: {exc}") from None

    def fail(why: str) -> CheckpointError:
        return CheckpointError(f"weights file {path} has malformed metadata: {why}")

    if not isinstance(meta, dict) or meta.get("format") != WEIGHTS_FORMAT:
        raise fail(f"format is not {WEIGHTS_FORMAT!r}")
    if meta.get("version") != VERSION:
        raise fail(f"version {meta.get('version')!r}, this mlpkit reads {VERSION}")
    model = meta.get("model")
    if not isinstance(model, dict) or not all(isinstance(model.get(k), str) for k in ("activation", "bias")):
        raise fail("model must name its activation and bias")
    hidden = model.get("hidden")
    if not isinstance(hidden, list) or not hidden or not all(_positive_int(h) for h in hidden):
        raise fail(f"model.hidden must be a list of positive integers, got {hidden!r}")
    for key in ("n_features", "n_classes"):
        if not _positive_int(meta.get(key)):
            raise fail(f"{key} must be a positive integer, got {meta.get(key)!r}")
    if meta.get("dtype") not in DTYPES:
        raise fail(f"dtype must be one of {', '.join(DTYPES)}, got {meta.get('dtype')!r}")
    if model["bias"] not in BIAS_MODES:
        raise fail(f"model.bias must be one of {', '.join(BIAS_MODES)}, got {model['bias']!r}")
    mean: Any = meta.get("mean")
    std: Any = meta.get("std")
    if not (_finite(mean) and _finite(std) and std > 0):
        raise fail(f"mean and std must be finite numbers with std > 0, got {mean!r}, {std!r}")
    return meta


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _check_config(path: Path, meta: dict[str, Any], config: Config) -> None:
    """Refuse weights saved for another model than ``config``'s."""
    saved = meta["model"]
    wanted = {"hidden": list(config.model.hidden), "activation": config.model.activation, "bias": config.model.bias}
    differ = [f"model.{k}: file {saved[k]!r}, config {v!r}" for k, v in wanted.items() if saved[k] != v]
    if meta["dtype"] != config.train.dtype:
        differ.append(f"train.dtype: file {meta['dtype']!r}, config {config.train.dtype!r}")
    if differ:
        raise CheckpointError(
            f"weights file {path} was saved for another model than the config's: " + "; ".join(differ)
        )
