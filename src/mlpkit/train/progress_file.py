"""A small JSON file that says how a fit is going, rewritten while it trains.

``history.json`` is written once, at the end; a reader that wants to follow a run from another
process (``mlpkit serve``'s live page, a shell loop) reads this file instead: the step, the
total, the wall time so far, the validation series, the training loss averaged into at most
`MAX_LOSS_POINTS` points, and the early-stopping state. It is written atomically (a reader
never sees half a file), at the start, after validation checks (at most once per
``min_interval_s``) and at the end. Writing it draws no random numbers and touches no array of
the model: training computes exactly what it computes without it. A failed write (a full disk)
turns the file off for the rest of the fit instead of stopping training.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from mlpkit.core.fileio import RunIOError, atomic_write_json
from mlpkit.train.callbacks import Callback, EarlyStopping, History, TrainerView

__all__ = ["MAX_LOSS_POINTS", "ProgressFile"]

#: The per-step training loss is averaged over consecutive steps into at most this many points.
MAX_LOSS_POINTS = 400


class ProgressFile(Callback):
    """Rewrite ``path`` with the fit's progress (see the module docstring for what it holds).

    Parameters
    ----------
    path : str or Path
        The JSON file (a run folder's ``progress.json``).
    history : History
        The fit's history callback, read (never changed) for the curves.
    early_stopping : EarlyStopping, optional
        The fit's early stopping, read for its patience, wait and best step.
    min_interval_s : float, default 0.5
        At most one write per this many seconds during training (the first and last always).
    """

    def __init__(
        self,
        path: str | Path,
        history: History,
        early_stopping: EarlyStopping | None = None,
        *,
        min_interval_s: float = 0.5,
    ) -> None:
        self.path = Path(path)
        self.history = history
        self.early_stopping = early_stopping
        self.min_interval_s = min_interval_s
        self.enabled = True
        self._started = time.time()
        self._last_write = -np.inf

    def on_train_begin(self, trainer: TrainerView) -> None:
        self._started = time.time()
        self._write(trainer, "running", force=True)

    def on_validation_end(self, trainer: TrainerView, logs: dict[str, float]) -> None:
        self._write(trainer, "running", force=False)

    def on_train_end(self, trainer: TrainerView) -> None:
        state = trainer.state
        if state.diverged:
            status = "diverged"
        elif state.interrupted or state.aborted:
            status = "interrupted"
        elif self.early_stopping is not None and self.early_stopping.stopped_step is not None:
            status = "early-stopped"
        else:
            status = "finished"
        self._write(trainer, status, force=True)

    def document(self, trainer: TrainerView, status: str) -> dict[str, Any]:
        """What the file holds now (plain JSON values)."""
        steps, losses = loss_points(self.history.train_loss)
        now = time.time()
        doc: dict[str, Any] = {
            "status": status,
            "step": int(trainer.state.step),
            "total_steps": int(trainer.total_steps),
            "steps_per_epoch": int(trainer.steps_per_epoch),
            "started": self._started,
            "updated": now,
            "elapsed_s": now - self._started,
            "train": {"step": steps, "loss": losses},
            "validation": {k: list(v) for k, v in self.history.validation.items()},
            "early_stopping": None,
        }
        stopper = self.early_stopping
        if stopper is not None:
            doc["early_stopping"] = {
                "patience": stopper.patience,
                "wait": stopper.wait,
                "best": stopper.best if np.isfinite(stopper.best) else None,
                "best_step": stopper.best_step,
                "stopped_step": stopper.stopped_step,
            }
        return doc

    def _write(self, trainer: TrainerView, status: str, *, force: bool) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last_write < self.min_interval_s:
            return
        self._last_write = now
        try:
            atomic_write_json(self.path, self.document(trainer, status), indent=None)
        except (OSError, RunIOError):
            self.enabled = False  # a progress file is a convenience; training goes on without it


def loss_points(loss: np.ndarray, limit: int = MAX_LOSS_POINTS) -> tuple[list[int], list[float | None]]:
    """``(steps, mean losses)``: ``loss`` (one per step, step 1 first) averaged over runs of
    consecutive steps into at most ``limit`` points, each at the last step of its run; non-finite
    means become None (JSON null)."""
    n = len(loss)
    if n == 0:
        return [], []
    width = -(-n // limit)
    full = n - n % width
    means = loss[:full].reshape(-1, width).mean(axis=1) if full else np.empty(0)
    ends = list(range(width, full + 1, width))
    if full < n:
        means = np.append(means, loss[full:].mean())
        ends.append(n)
    return ends, [float(m) if np.isfinite(m) else None for m in means]
