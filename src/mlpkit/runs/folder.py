"""Run folders on disk: naming a new one, reading a finished one back, tidying after a crash.

The files and what each holds are listed in `mlpkit.runs.schema`.
"""

from __future__ import annotations

import json
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlpkit.core.errors import MlpkitError
from mlpkit.runs import schema
from mlpkit.runs.completion import IncompleteRunError, incomplete_message, mismatches
from mlpkit.train.checkpoint import read_npz

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
    """True if ``run_dir`` does not exist or holds nothing but stale temporaries of atomic writes
    and the lock file (`schema.LOCK`)."""
    if not run_dir.exists():
        return True
    return all(p.match(schema.TEMPORARY_GLOB) or p.name == schema.LOCK for p in run_dir.iterdir())


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
        """The arrays of ``predictions.npz`` (checked, see `schema.check_predictions`), or None if
        the run has none.

        Raises
        ------
        MlpkitError
            Naming the file, if it is unreadable, unsafe or does not hold predictions.
        """
        p = self.path / schema.PREDICTIONS
        if not p.exists():
            return None
        return schema.check_predictions(read_npz(p, what="predictions file", compressed=True), p)

    def weights(self) -> dict[str, np.ndarray]:
        """The parameter arrays of ``weights.npz`` by name (without the metadata), read safely.

        Raises
        ------
        MlpkitError
            Naming the file, if it is missing, unreadable or unsafe.
        """
        arrays = read_npz(self.path / schema.WEIGHTS, what="weights file")
        arrays.pop("__meta__", None)
        return arrays


def load_run(path: str | Path) -> Run:
    """Read a finished run folder: one whose results were committed (`mlpkit.runs.completion`).

    Parameters
    ----------
    path : str or Path
        The run folder.

    Returns
    -------
    Run

    Raises
    ------
    IncompleteRunError
        If the run was stopped before it committed its results (no ``metrics.json``, or result
        files that disagree with the checksums in it); the message says how to finish it.
    MlpkitError
        Naming the file, if the folder does not exist, is not a run folder, or holds a file that
        is unreadable or does not hold what the schema says (`mlpkit.runs.schema`).
    """
    path = Path(path)
    if not path.is_dir():
        raise MlpkitError(f"run folder {path} does not exist")
    if not (path / schema.CONFIG).exists():
        raise MlpkitError(f"{path} is not a run folder: missing {schema.CONFIG}")
    if not (path / schema.METRICS).exists():
        raise IncompleteRunError(incomplete_message(path))
    missing = [n for n in schema.REQUIRED if not (path / n).exists()]
    if missing:
        raise IncompleteRunError(incomplete_message(path, f"{', '.join(missing)} missing"))
    environment_path = path / schema.ENVIRONMENT
    run = Run(
        path=path,
        config=schema.check_config(_read(path / schema.CONFIG, tomllib.loads), path / schema.CONFIG),
        history=schema.check_history(_read(path / schema.HISTORY, json.loads), path / schema.HISTORY),
        metrics=schema.check_metrics(_read(path / schema.METRICS, json.loads), path / schema.METRICS),
        environment=schema.check_environment(_read(environment_path, json.loads), environment_path)
        if environment_path.exists()
        else {},
    )
    _check_committed(run)
    return run


def _check_committed(run: Run) -> None:
    """Raise IncompleteRunError if the result files are not the unit metrics.json committed.

    A file that disagrees with its checksum is read first: if it is damaged, its own reader's
    error names it; if it is whole, it is from another step of the run (an interrupted commit)."""
    readers: dict[str, Callable[[], Any]] = {schema.PREDICTIONS: run.predictions, schema.WEIGHTS: run.weights}
    for name, problem in mismatches(run.path, run.metrics):
        if name in readers and problem != "missing":
            readers[name]()
        raise IncompleteRunError(incomplete_message(run.path, f"{name} {problem}"))


def _read(path: Path, parse: Callable[[str], Any]) -> Any:
    """``parse`` of the text of ``path``; any failure is one MlpkitError naming the file."""
    try:
        return parse(path.read_text(encoding="utf-8"))
    except (ValueError, OSError, RecursionError) as exc:  # JSON/TOML decode errors are ValueErrors
        raise MlpkitError(f"{path} is unreadable: {exc}") from None
