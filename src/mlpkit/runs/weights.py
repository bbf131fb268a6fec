"""A run's trained weights on disk (``weights.npz``): parameters by name plus what is needed to
use them (architecture, dtype, normalization), as plain arrays and JSON; never a pickle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlpkit.core.errors import CheckpointError
from mlpkit.core.fileio import atomic_save_npz
from mlpkit.runs.schema import WEIGHTS_FORMAT

if TYPE_CHECKING:
    from mlpkit.nn.mlp import MLP

__all__ = ["load_weights", "save_weights"]

META_KEY = "__meta__"
VERSION = 1


def save_weights(path: str | Path, model: MLP, *, mean: float, std: float, config: dict[str, Any]) -> Path:
    """Atomically write ``model``'s parameters and metadata to ``path``.

    Parameters
    ----------
    path : str or Path
        The ``.npz`` file to write.
    model : MLP
        The trained model.
    mean, std : float
        The normalization its inputs need.
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
        "mean": mean,
        "std": std,
    }
    arrays = dict(model.state_dict())
    arrays[META_KEY] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    return atomic_save_npz(path, arrays)


def load_weights(path: str | Path) -> tuple[MLP, dict[str, Any]]:
    """Rebuild the model saved by :func:`save_weights`.

    Parameters
    ----------
    path : str or Path
        A ``weights.npz`` file.

    Returns
    -------
    (MLP, dict)
        The model and the file's metadata (architecture, dtype, mean, std).

    Raises
    ------
    CheckpointError
        If the file is unreadable or does not describe a model.
    """
    from mlpkit.nn.mlp import MLP

    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
        meta = json.loads(arrays.pop(META_KEY).tobytes().decode("utf-8"))
    except Exception as exc:
        raise CheckpointError(f"weights file {path} is unreadable: {type(exc).__name__}: {exc}") from None
    m = meta["model"]
    model = MLP(
        m["hidden"],
        n_features=meta["n_features"],
        n_classes=meta["n_classes"],
        activation=m["activation"],
        bias=m["bias"],
        dtype=meta["dtype"],
    )
    model.load_state_dict(arrays)
    return model, meta
