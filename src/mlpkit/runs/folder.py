"""Run folders on disk: naming a new one, reading a finished one back, tidying after a crash.

The files and what each holds are listed in `mlpkit.runs.schema`.
"""

from __future__ import annotations

import json
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlpkit.core.errors import MlpkitError
from mlpkit.runs import schema

__all__ = ["Run", "is_empty", "load_run", "new_run_dir", "remove_stale_temporaries"]


def new_run_dir(root: str | Path, name: str) -> Path:
    """``root/NAME-YYYYmmdd-HHMMSS``, with a counter appended if that exists already.

    Parameters
    ----------
    root : str or Path
        The folder that holds runs (``runs`` for the CLI).
    name : str
        The config's name.

    Returns
    -------
    Path
        A path that does not exist yet (nothing is created).
    """
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{name}-{stamp}"
    path, i = base, 1
    while path.exists():
        i += 1
        path = Path(f"{base}-{i}")
    return path


def is_empty(run_dir: Path) -> bool:
    """True if ``run_dir`` does not exist or holds nothing but stale temporaries of atomic writes."""
    return not run_dir.exists() or all(p.match(schema.TEMPORARY_GLOB) for p in run_dir.iterdir())


def remove_stale_temporaries(run_dir: Path) -> None:
    """Delete temporary files of atomic writes that a killed process left behind (never final names)."""
    for folder in (run_dir, run_dir / schema.CHECKPOINTS, run_dir / schema.FIGURES):
        for tmp in folder.glob(schema.TEMPORARY_GLOB):
            tmp.unlink(missing_ok=True)


@dataclass
class Run:
    """A run folder read back: everything a report needs.

    Parameters
    ----------
    path : Path
        The run folder.
    config, history, metrics, environment : dict
        The parsed ``config.toml``, ``history.json``, ``metrics.json`` and ``environment.json``
        (empty if the folder has none).
    """

    path: Path
    config: dict[str, Any]
    history: dict[str, Any]
    metrics: dict[str, Any]
    environment: dict[str, Any]

    @property
    def name(self) -> str:
        return self.config.get("name", self.path.name)

    def predictions(self) -> dict[str, np.ndarray] | None:
        """The arrays of ``predictions.npz``, or None if the run has none."""
        p = self.path / schema.PREDICTIONS
        if not p.exists():
            return None
        with np.load(p, allow_pickle=False) as archive:
            return {k: archive[k] for k in archive.files}

    def weights(self) -> dict[str, np.ndarray]:
        """The parameter arrays of ``weights.npz`` by name (without the metadata)."""
        with np.load(self.path / schema.WEIGHTS, allow_pickle=False) as archive:
            return {k: archive[k] for k in archive.files if k != "__meta__"}


def load_run(path: str | Path) -> Run:
    """Read a finished run folder.

    Parameters
    ----------
    path : str or Path
        The run folder.

    Returns
    -------
    Run

    Raises
    ------
    MlpkitError
        If the folder does not exist, lacks one of `schema.REQUIRED`, or holds an unreadable file.
    """
    path = Path(path)
    if not path.is_dir():
        raise MlpkitError(f"run folder {path} does not exist")
    missing = [n for n in schema.REQUIRED if not (path / n).exists()]
    if missing:
        raise MlpkitError(f"{path} is not a finished run folder: missing {', '.join(missing)}")
    try:
        config = tomllib.loads((path / schema.CONFIG).read_text(encoding="utf-8"))
        history = json.loads((path / schema.HISTORY).read_text(encoding="utf-8"))
        metrics = json.loads((path / schema.METRICS).read_text(encoding="utf-8"))
        env_path = path / schema.ENVIRONMENT
        environment = json.loads(env_path.read_text(encoding="utf-8")) if env_path.exists() else {}
    except (ValueError, OSError) as exc:
        raise MlpkitError(f"run folder {path} has an unreadable file: {exc}") from None
    return Run(path=path, config=config, history=history, metrics=metrics, environment=environment)
