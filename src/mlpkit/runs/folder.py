"""Run folders on disk: what a training run leaves behind, and how to read it back.

A run folder is enough to report on (plots and HTML are made from it, never from live
objects) and, with its checkpoints, enough to resume.

    RUN/config.toml        resolved configuration (mlpkit train RUN/config.toml reruns it)
    RUN/environment.json   seed, versions, BLAS and thread count, machine
    RUN/history.json       training loss per step; validation metrics per check
    RUN/metrics.json       final metrics (see FINAL_METRICS)
    RUN/weights.npz        parameters + normalization (plain arrays, no pickle)
    RUN/predictions.npz    validation labels, predictions, probabilities, misclassified images
    RUN/figures/*.png|svg  loss and accuracy against the gradient step
    RUN/checkpoints/       the two newest checkpoints
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlpkit.core.errors import CheckpointError, MlpkitError
from mlpkit.core.fileio import atomic_save_npz, atomic_write_json

FINAL_METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "num_parameters", "steps",
                 "early_stop_step", "wall_time_s")


def new_run_dir(root: str | Path, name: str) -> Path:
    """``root/NAME-YYYYmmdd-HHMMSS`` (with a counter if that exists already)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{name}-{stamp}"
    path, i = base, 1
    while path.exists():
        i += 1
        path = Path(f"{base}-{i}")
    return path


def environment_info(*, seed: int, threads: int | None) -> dict[str, Any]:
    """What a run depends on beyond its config: versions, BLAS, threads, machine."""
    import numpy

    from mlpkit import __version__

    try:
        from threadpoolctl import threadpool_info

        blas = [{k: i.get(k) for k in ("internal_api", "version", "num_threads", "architecture", "filepath")}
                for i in threadpool_info()]
    except Exception:  # pragma: no cover - threadpoolctl is a dependency
        blas = []
    return {
        "seed": seed,
        "threads": threads,
        "mlpkit": __version__,
        "python": sys.version.split()[0],
        "numpy": numpy.__version__,
        "blas": blas,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def save_weights(path: str | Path, model, *, mean: float, std: float, config: dict[str, Any]) -> Path:
    """Parameters by name plus what is needed to use them (normalization, model config)."""
    meta = {"format": "mlpkit-weights", "version": 1, "model": config["model"], "dtype": model.dtype.name,
            "n_features": model.n_features, "n_classes": model.n_classes, "mean": mean, "std": std}
    arrays = dict(model.state_dict())
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    return atomic_save_npz(path, arrays)


def load_weights(path: str | Path):
    """Rebuild the model saved by :func:`save_weights`; returns (model, meta)."""
    from mlpkit.nn.mlp import MLP

    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
        meta = json.loads(arrays.pop("__meta__").tobytes().decode("utf-8"))
    except Exception as exc:
        raise CheckpointError(f"weights file {path} is unreadable: {type(exc).__name__}: {exc}") from None
    m = meta["model"]
    model = MLP(m["hidden"], n_features=meta["n_features"], n_classes=meta["n_classes"],
                activation=m["activation"], bias=m["bias"], dtype=meta["dtype"])
    model.load_state_dict(arrays)
    return model, meta


@dataclass
class Run:
    """A run folder read back: everything a report needs."""

    path: Path
    config: dict[str, Any]
    history: dict[str, Any]
    metrics: dict[str, Any]
    environment: dict[str, Any]

    @property
    def name(self) -> str:
        return self.config.get("name", self.path.name)

    def predictions(self) -> dict[str, np.ndarray] | None:
        p = self.path / "predictions.npz"
        if not p.exists():
            return None
        with np.load(p, allow_pickle=False) as archive:
            return {k: archive[k] for k in archive.files}

    def weights(self) -> dict[str, np.ndarray]:
        with np.load(self.path / "weights.npz", allow_pickle=False) as archive:
            return {k: archive[k] for k in archive.files if k != "__meta__"}


def load_run(path: str | Path) -> Run:
    """Read a finished run folder; a missing or broken file is a clear MlpkitError."""
    import tomllib

    path = Path(path)
    if not path.is_dir():
        raise MlpkitError(f"run folder {path} does not exist")
    needed = ["config.toml", "history.json", "metrics.json"]
    missing = [n for n in needed if not (path / n).exists()]
    if missing:
        raise MlpkitError(f"{path} is not a finished run folder: missing {', '.join(missing)}")
    try:
        config = tomllib.loads((path / "config.toml").read_text(encoding="utf-8"))
        history = json.loads((path / "history.json").read_text(encoding="utf-8"))
        metrics = json.loads((path / "metrics.json").read_text(encoding="utf-8"))
        env_path = path / "environment.json"
        environment = json.loads(env_path.read_text(encoding="utf-8")) if env_path.exists() else {}
    except (ValueError, OSError) as exc:
        raise MlpkitError(f"run folder {path} has an unreadable file: {exc}") from None
    return Run(path=path, config=config, history=history, metrics=metrics, environment=environment)


def write_json(path: Path, obj: Any) -> None:
    atomic_write_json(path, obj)
