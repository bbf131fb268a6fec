"""What the runs and live pages show of run folders, read from the folders only (never from a
live process), so that a run started from any terminal is seen the same way.

A finished run is read from ``metrics.json`` and ``history.json``; a run in progress from
``progress.json``, which training rewrites (`mlpkit.train.progress_file`). Nothing here writes.
"""

from __future__ import annotations

import json
import time
import tomllib
from pathlib import Path
from typing import Any

from mlpkit.runs import schema

__all__ = ["STALE_S", "live_state", "run_summary", "list_runs"]

#: A progress file that says "running" but has not changed for this long belongs to a process
#: that died (a kill, a crash): the run is shown as stopped.
STALE_S = 120.0
#: The statuses of a progress file whose fit has ended.
OVER = ("finished", "early-stopped", "interrupted", "diverged")


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _config(path: Path) -> dict[str, Any]:
    try:
        config = tomllib.loads((path / schema.CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def status_of(path: Path, progress: Any, metrics: Any) -> str:
    """finished, early-stopped, interrupted, diverged, running, stopped or incomplete."""
    if isinstance(metrics, dict):
        if metrics.get("early_stop_step") is not None:
            return "early-stopped"
        return "finished"
    if (path / schema.METRICS_PARTIAL).exists():
        return "interrupted"
    if (path / schema.DIVERGED).exists():
        return "diverged"
    if isinstance(progress, dict) and progress.get("status") == "running":
        updated = _number(progress.get("updated")) or 0.0
        return "running" if time.time() - updated < STALE_S else "stopped"
    if isinstance(progress, dict) and progress.get("status") in OVER:
        return str(progress["status"])  # training is over; its results are being written
    return "incomplete"


def run_summary(path: Path) -> dict[str, Any]:
    """One row of the runs page and of ``GET /api/runs``: the folder's name, its config's name,
    description and hidden layers, status, key metrics (None where unknown), and whether it
    has a model and a report of its own."""
    config = _config(path)
    metrics = _json(path / schema.METRICS)
    progress = _json(path / schema.PROGRESS)
    numbers = metrics if isinstance(metrics, dict) else {}
    model = config.get("model") if isinstance(config.get("model"), dict) else {}
    step = numbers.get("steps")
    if step is None and isinstance(progress, dict):
        step = progress.get("step")
    return {
        "name": path.name,
        "config_name": str(config.get("name", "")),
        "description": str(config.get("description", "")),
        "hidden": [h for h in model.get("hidden", []) if isinstance(h, int)] if isinstance(model, dict) else [],
        "status": status_of(path, progress, metrics),
        "val_accuracy": _number(numbers.get("val_accuracy")),
        "val_loss": _number(numbers.get("val_loss")),
        "test_accuracy": _number(numbers.get("test_accuracy")),
        "steps": _number(step),
        "epochs": _number(numbers.get("epochs_completed")),
        "wall_time_s": _number(numbers.get("wall_time_s")),
        "modified": max((p.stat().st_mtime for p in path.iterdir() if p.is_file()), default=path.stat().st_mtime),
        "has_model": (path / schema.MODEL).is_file(),
        "has_report": (path / "report.html").is_file(),
    }


def list_runs(root: Path) -> list[dict[str, Any]]:
    """`run_summary` of every run folder (a folder with a ``config.toml``) directly under
    ``root``, newest first."""
    if not root.is_dir():
        return []
    folders = [p for p in root.iterdir() if p.is_dir() and (p / schema.CONFIG).is_file()]
    return sorted((run_summary(p) for p in folders), key=lambda r: r["modified"], reverse=True)


def live_state(path: Path) -> dict[str, Any]:
    """What the live page draws now: status, step, total, elapsed and remaining seconds, the
    curves (training loss points, validation series) and the early-stopping state.

    A run in progress is read from ``progress.json``; a finished one without it from
    ``history.json`` and ``metrics.json``.
    """
    progress = _json(path / schema.PROGRESS)
    metrics = _json(path / schema.METRICS)
    status = status_of(path, progress, metrics)
    state: dict[str, Any] = {"name": path.name, "status": status, "eta_s": None}
    if isinstance(progress, dict):
        train = progress.get("train") if isinstance(progress.get("train"), dict) else {}
        state.update(
            step=progress.get("step"),
            total_steps=progress.get("total_steps"),
            elapsed_s=progress.get("elapsed_s"),
            train=train,
            validation=progress.get("validation") if isinstance(progress.get("validation"), dict) else {},
            early_stopping=progress.get("early_stopping"),
        )
        step, total, elapsed = (_number(progress.get(k)) for k in ("step", "total_steps", "elapsed_s"))
        if status == "running" and step and total and elapsed is not None and total >= step:
            state["eta_s"] = elapsed / step * (total - step)
        return state
    return {**state, **_finished_curves(path, metrics)}


def _finished_curves(path: Path, metrics: Any) -> dict[str, Any]:
    from mlpkit.train.progress_file import loss_points

    history = _json(path / schema.HISTORY)
    numbers = metrics if isinstance(metrics, dict) else {}
    if not isinstance(history, dict):
        return {"step": None, "total_steps": None, "elapsed_s": None, "train": {}, "validation": {}}
    import numpy as np

    train: dict[str, Any] = history["train"] if isinstance(history.get("train"), dict) else {}
    loss: list[Any] = train["loss"] if isinstance(train.get("loss"), list) else []
    steps, losses = loss_points(np.asarray([_number(v) or np.nan for v in loss], dtype=np.float64))
    validation = history.get("validation") if isinstance(history.get("validation"), dict) else {}
    return {
        "step": numbers.get("steps", len(loss)),
        "total_steps": numbers.get("steps", len(loss)),
        "elapsed_s": numbers.get("wall_time_s"),
        "train": {"step": steps, "loss": losses},
        "validation": validation,
        "early_stopping": {"stopped_step": numbers.get("early_stop_step")},
    }
