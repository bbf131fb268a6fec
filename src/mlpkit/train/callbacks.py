"""Training callbacks: the loop emits logs, callbacks record, stop, save and display.

Each callback may implement ``state_dict``/``load_state_dict`` so that a checkpoint holds
everything needed to resume exactly. Callbacks see the trainer only through
:class:`TrainerView`, the few things they read or set (this module does not import the trainer).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from mlpkit.nn.mlp import MLP


class TrainingStateView(Protocol):
    """What callbacks read of ``trainer.state`` (a :class:`~mlpkit.train.trainer.TrainState`)."""

    step: int  # completed gradient steps
    interrupted: bool  # stopped by Ctrl-C (between two steps: resumable)
    diverged: bool  # stopped by a non-finite loss or weight
    aborted: bool  # stopped by an exception mid-step: the state may be torn, never save it


class TrainerView(Protocol):
    """What callbacks read of a :class:`~mlpkit.train.trainer.Trainer`, and ``stop_training``,
    which they may set to end training after the current run of steps."""

    stop_training: bool
    total_steps: int
    steps_per_epoch: int
    validate_every: int

    @property
    def model(self) -> MLP: ...

    @property
    def state(self) -> TrainingStateView: ...

    def state_dict(self) -> dict[str, Any]: ...


class Callback:
    """Hooks called by :class:`~mlpkit.train.trainer.Trainer`; all optional.

    ``on_steps_end`` is called after each run of steps (the compiled engine runs many per
    call); its default calls ``on_step_end`` once per step. A callback that overrides
    ``on_step_end`` but not ``on_steps_end`` makes every run one step long, so it sees the
    trainer as it is after each step. ``needs_validation``: the callback only makes sense
    with validation checks (the trainer refuses a fit without them).
    """

    needs_validation = False

    def on_train_begin(self, trainer: TrainerView) -> None: ...

    def on_step_end(self, trainer: TrainerView, step: int, loss: float) -> None: ...

    def on_steps_end(self, trainer: TrainerView, first_step: int, losses: np.ndarray) -> None:
        """Steps ``first_step ..`` ended with these losses (the compiled path runs many steps
        per call and reports them afterwards). Default: ``on_step_end`` for each."""
        for i, loss in enumerate(losses.tolist()):
            self.on_step_end(trainer, first_step + i, loss)

    def on_validation_end(self, trainer: TrainerView, logs: dict[str, float]) -> None: ...

    def on_epoch_end(self, trainer: TrainerView, epoch: int) -> None: ...

    def on_train_end(self, trainer: TrainerView) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class History(Callback):
    """Training loss at every step and the metrics of every validation check.

    Per-step losses go into a float64 array that grows by doubling, up to the run's total
    steps (no per-step Python allocation, and no allocation for the worst case up front: a run
    that early-stops after 20 of 10,000 epochs holds about 20 epochs of history);
    ``train_loss`` and ``validation`` (lists per key of ``VALIDATION_KEYS``) hold them.
    """

    VALIDATION_KEYS = ("step", "epoch", "val_loss", "val_accuracy", "train_loss", "train_accuracy")
    #: Entries allocated at the start of a fit (at most the run's total steps).
    INITIAL_CAPACITY = 4096

    def __init__(self) -> None:
        self.step_loss = np.empty(0)
        self.num_steps = 0
        self.validation: dict[str, list[float]] = {k: [] for k in self.VALIDATION_KEYS}
        self._limit = 0  # the run's total steps: the array never grows past them

    def on_train_begin(self, trainer: TrainerView) -> None:
        self._limit = max(trainer.total_steps, self.num_steps)
        self._reserve(min(self._limit, max(self.num_steps, self.INITIAL_CAPACITY)))

    def _reserve(self, n: int) -> None:
        """Make room for at least ``n`` entries (doubling, capped at the run's total steps)."""
        if n <= len(self.step_loss):
            return
        size = max(n, min(max(self._limit, n), 2 * len(self.step_loss)))
        grown = np.full(size, np.nan)
        grown[: self.num_steps] = self.step_loss[: self.num_steps]
        self.step_loss = grown

    def on_step_end(self, trainer: TrainerView, step: int, loss: float) -> None:
        if self.num_steps == len(self.step_loss):
            self._reserve(self.num_steps + 1)
        self.step_loss[self.num_steps] = loss
        self.num_steps += 1

    def on_steps_end(self, trainer: TrainerView, first_step: int, losses: np.ndarray) -> None:
        self._reserve(self.num_steps + len(losses))
        self.step_loss[self.num_steps : self.num_steps + len(losses)] = losses
        self.num_steps += len(losses)

    def on_validation_end(self, trainer: TrainerView, logs: dict[str, float]) -> None:
        for key in self.VALIDATION_KEYS:
            self.validation[key].append(logs[key])

    @property
    def train_loss(self) -> np.ndarray:
        return self.step_loss[: self.num_steps]

    def to_dict(self) -> dict[str, Any]:
        return {
            "train": {"step": list(range(1, self.num_steps + 1)), "loss": self.train_loss.tolist()},
            "validation": {k: list(v) for k, v in self.validation.items()},
        }

    def state_dict(self) -> dict[str, Any]:
        return {"step_loss": self.train_loss.copy(), "validation": {k: list(v) for k, v in self.validation.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_loss = np.asarray(state["step_loss"], dtype=np.float64).copy()
        self.num_steps = len(self.step_loss)
        self.validation = {k: list(state["validation"][k]) for k in self.VALIDATION_KEYS}


class EarlyStopping(Callback):
    """Stop when the monitored value has not improved by ``min_delta`` for ``patience`` checks.

    Parameters
    ----------
    patience : int
        Validation checks without improvement before training stops (counted in checks, as
        the seed report does: patience 50).
    min_delta : float, default 0.0
        An improvement is a decrease by more than this.
    monitor : str, default "val_loss"
        The validation log to watch (lower is better).
    restore_best_weights : bool, default False
        Give the model the best weights back when training ends (not after Ctrl-C: the
        checkpoint saved then must hold the current weights to resume exactly).
    """

    needs_validation = True

    def __init__(
        self, *, patience: int, min_delta: float = 0.0, monitor: str = "val_loss", restore_best_weights: bool = False
    ) -> None:
        self.patience = patience
        self.min_delta = min_delta
        self.monitor = monitor
        self.restore_best_weights = restore_best_weights
        self.reset()

    def on_train_begin(self, trainer: TrainerView) -> None:
        if self.stopped_step is not None:  # resumed after early stopping had already fired
            trainer.stop_training = True

    def reset(self) -> None:
        self.best = math.inf
        self.best_step: int | None = None
        self.wait = 0
        self.stopped_step: int | None = None
        self.best_weights: list[np.ndarray] | None = None

    def on_validation_end(self, trainer: TrainerView, logs: dict[str, float]) -> None:
        value = logs[self.monitor]
        if value < self.best - self.min_delta:
            self.best, self.best_step, self.wait = value, int(logs["step"]), 0
            if self.restore_best_weights:
                self.best_weights = [p.copy() for p in trainer.model.parameters()]
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_step = int(logs["step"])
            trainer.stop_training = True

    def on_train_end(self, trainer: TrainerView) -> None:
        # not on Ctrl-C: the checkpoint saved next must hold the current weights to resume exactly
        if self.restore_best_weights and self.best_weights is not None and not trainer.state.interrupted:
            for p, best in zip(trainer.model.parameters(), self.best_weights):
                p[...] = best

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "best": self.best,
            "best_step": self.best_step,
            "wait": self.wait,
            "stopped_step": self.stopped_step,
        }
        if self.best_weights is not None:
            state["best_weights"] = [w.copy() for w in self.best_weights]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_step = float(state["best"]), state["best_step"]
        self.wait, self.stopped_step = int(state["wait"]), state["stopped_step"]
        self.best_weights = [np.array(w) for w in state["best_weights"]] if "best_weights" in state else None


class ProgressBar(Callback):
    """A tqdm bar over gradient steps with the live loss and latest validation metrics.

    Parameters
    ----------
    enabled : bool, optional
        Show the bar; default: only when stderr is a terminal (quiet in CI logs and pipes).
    description : str, default "train"
        The bar's label.
    """

    def __init__(self, *, enabled: bool | None = None, description: str = "train") -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.description = description
        self.bar = None
        self._postfix: dict[str, str] = {}

    def on_train_begin(self, trainer: TrainerView) -> None:
        if not self.enabled:
            return
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=trainer.total_steps,
            initial=trainer.state.step,
            desc=self.description,
            unit="step",
            dynamic_ncols=True,
            leave=True,
            mininterval=0.2,
        )

    def on_step_end(self, trainer: TrainerView, step: int, loss: float) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if step % 25 == 0:
                self._postfix["loss"] = f"{loss:.4f}"
                self.bar.set_postfix(self._postfix, refresh=False)

    def on_steps_end(self, trainer: TrainerView, first_step: int, losses: np.ndarray) -> None:
        if self.bar is not None and len(losses):
            self._postfix["loss"] = f"{losses[-1]:.4f}"
            self.bar.set_postfix(self._postfix, refresh=False)
            self.bar.update(len(losses))

    def on_validation_end(self, trainer: TrainerView, logs: dict[str, float]) -> None:
        if self.bar is not None:
            self._postfix.update(val_loss=f"{logs['val_loss']:.4f}", val_acc=f"{logs['val_accuracy']:.4f}")

    def on_train_end(self, trainer: TrainerView) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class Checkpointer(Callback):
    """Save the trainer's full state at the start, every ``every`` validation checks and at the end.

    Nothing is saved after a divergence or an abort (an exception mid-step, e.g. a second
    Ctrl-C), nor a state whose weights or velocities are not all finite: every checkpoint
    on disk is a good one to fall back on.

    Parameters
    ----------
    directory : str or Path
        Where the ``step-NNNNNNNNN.npz`` files go.
    every : int
        Save every this many validation checks (0: only at the start and the end).
    keep : int, default 2
        The newest files kept, so that a corrupt latest checkpoint can fall back on the one before.
    record : mapping, optional
        Saved beside the training state in every checkpoint, under its own keys (a run records
        its config, which a resume compares with its own).
    """

    def __init__(self, directory, *, every: int, keep: int = 2, record: Mapping[str, Any] | None = None) -> None:
        from pathlib import Path

        self.directory = Path(directory)
        self.every = every
        self.keep = keep
        self.record = dict(record or {})
        self._checks = 0
        self.elapsed_before = 0.0  # training seconds spent before a resume
        self._started = time.perf_counter()
        self.skipped: list[int] = []  # steps whose state was not finite, hence not saved

    @property
    def elapsed_s(self) -> float:
        """Training wall time so far, across resumes."""
        return self.elapsed_before + time.perf_counter() - self._started

    def _save(self, trainer: TrainerView) -> None:
        from mlpkit.train.checkpoint import save_checkpoint

        state = trainer.state_dict()
        arrays = list(state["model"].values()) + list(state["optimizer"].values())
        if not all(np.isfinite(a).all() for a in arrays):
            self.skipped.append(trainer.state.step)
            return
        path = self.directory / f"step-{trainer.state.step:09d}.npz"
        save_checkpoint(path, {**state, **self.record})
        for old in sorted(self.directory.glob("step-*.npz"))[: -self.keep]:
            old.unlink(missing_ok=True)

    def on_train_begin(self, trainer: TrainerView) -> None:
        self._started = time.perf_counter()
        if self.every and trainer.state.step == 0:  # a good state to fall back on from the start
            self._save(trainer)

    def on_validation_end(self, trainer: TrainerView, logs: dict[str, float]) -> None:
        self._checks += 1
        if self.every and self._checks % self.every == 0:
            self._save(trainer)

    def on_train_end(self, trainer: TrainerView) -> None:
        state = trainer.state
        if not state.diverged and not state.aborted and state.step > 0:
            self._save(trainer)

    def state_dict(self) -> dict[str, Any]:
        # the cadence of checkpoints and the wall time carry over a resume
        return {"checks": self._checks, "elapsed_s": self.elapsed_s}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._checks = int(state.get("checks", 0))
        self.elapsed_before = float(state.get("elapsed_s", 0.0))
