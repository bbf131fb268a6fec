"""``results.csv`` and ``results.json`` of a sweep: one row per trial, rewritten atomically as
trials finish, so a reader (or the report) never sees a half-written file.

A row: the trial's name and status, every swept key, the seed, the final metrics, the best
validation metrics, wall time and the worker that finished it. Rows are read from the trial's
run folder, never from the task's return value, so a trial finished by an earlier invocation
gives the same row.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlpkit.core.fileio import atomic_write_json, atomic_write_text
from mlpkit.runs.folder import Run, load_run
from mlpkit.workflows.sweep.trials import Trial

RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"
#: Final metrics copied from metrics.json when present (test ones only off the seed split).
FINAL_METRICS = (
    "val_accuracy",
    "val_loss",
    "train_accuracy",
    "train_loss",
    "test_accuracy",
    "test_loss",
    "best_val_loss",
    "best_val_loss_step",
    "early_stop_step",
    "steps",
    "wall_time_s",
)


def best_validation(history: dict[str, Any]) -> dict[str, Any]:
    """The best validation accuracy in ``history`` and the step it was reached at."""
    val = history.get("validation", {})
    acc, steps = val.get("val_accuracy") or [], val.get("step") or []
    if not acc:
        return {"best_val_accuracy": None, "best_val_accuracy_step": None}
    i = max(range(len(acc)), key=lambda j: acc[j])  # the first of equal maxima
    return {"best_val_accuracy": acc[i], "best_val_accuracy_step": steps[i] if i < len(steps) else None}


def trial_row(
    trial: Trial, run: Run | None, *, status: str, worker: str = "", how: str = "", error: str = ""
) -> dict[str, Any]:
    """One row of the results, from the trial and its run folder read back (None if it has none).

    ``how`` says what the last task did with the trial's folder: ``ran`` (from the start),
    ``resumed`` (from a checkpoint a killed or stopped task left) or ``kept`` (already finished).
    """
    row: dict[str, Any] = {"trial": trial.name, "status": status, **trial.params, "seed": trial.seed}
    metrics = run.metrics if run is not None else {}
    for key in FINAL_METRICS:
        row[key] = metrics.get(key)
    row.update(best_validation(run.history) if run is not None else best_validation({}))
    row["worker"] = worker
    row["how"] = how
    row["error"] = error
    return row


def finished_row(trial: Trial, run_dir: Path, *, worker: str, how: str) -> dict[str, Any]:
    """The row of a trial whose folder holds committed results (`load_run` checks them)."""
    return trial_row(trial, load_run(run_dir), status="done", worker=worker, how=how)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple | dict):
        return json.dumps(value)
    return str(value)


def columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The union of the rows' keys, in first-seen order."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def write_results(out: Path, rows: Sequence[dict[str, Any]], *, swept: Sequence[str]) -> None:
    """Write ``results.json`` (``{"swept", "rows"}``) and ``results.csv`` atomically."""
    atomic_write_json(out / RESULTS_JSON, {"swept": list(swept), "rows": list(rows)})
    buf = io.StringIO()
    names = columns(rows)
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(names)
    for row in rows:
        writer.writerow([_cell(row.get(n)) for n in names])
    atomic_write_text(out / RESULTS_CSV, buf.getvalue())


def read_results(out: Path) -> dict[str, Any]:
    """``results.json`` of the sweep in ``out`` (``{"swept": [], "rows": []}`` if there is none yet)."""
    path = out / RESULTS_JSON
    if not path.exists():
        return {"swept": [], "rows": []}
    return json.loads(path.read_text(encoding="utf-8"))
