"""Training callbacks: the loop emits logs, callbacks record, stop, save and display.

Each callback may implement ``state_dict``/``load_state_dict`` so that a checkpoint holds
everything needed to resume exactly.
"""

from __future__ import annotations

import math
import sys
import time
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from mlpkit.train.trainer import Trainer


class Callback:
    """Hooks called by :class:`~mlpkit.train.trainer.Trainer`; all optional."""

    def on_train_begin(self, trainer: "Trainer") -> None: ...

    def on_step_end(self, trainer: "Trainer", step: int, loss: float) -> None: ...

    def on_steps_end(self, trainer: "Trainer", first_step: int, losses: np.ndarray) -> None:
        """Steps ``first_step ..`` ended with these losses (the compiled path runs many steps
        per call and reports them afterwards). Default: ``on_step_end`` for each."""
        for i, loss in enumerate(losses.tolist()):
            self.on_step_end(trainer, first_step + i, loss)

    def on_validation_end(self, trainer: "Trainer", logs: dict[str, float]) -> None: ...

    def on_epoch_end(self, trainer: "Trainer", epoch: int) -> None: ...

    def on_train_end(self, trainer: "Trainer") -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class History(Callback):
    """Training loss at every step and the metrics of every validation check.

    Per-step losses go into a preallocated float64 array (no per-step Python allocation).
    """

    VALIDATION_KEYS = ("step", "epoch", "val_loss", "val_accuracy", "train_loss", "train_accuracy")

    def __init__(self) -> None:
        self.step_loss = np.empty(0)
        self.num_steps = 0
        self.validation: dict[str, list[float]] = {k: [] for k in self.VALIDATION_KEYS}

    def on_train_begin(self, trainer: "Trainer") -> None:
        if len(self.step_loss) < trainer.total_steps:
            grown = np.full(trainer.total_steps, np.nan)
            grown[: self.num_steps] = self.step_loss[: self.num_steps]
            self.step_loss = grown

    def on_step_end(self, trainer: "Trainer", step: int, loss: float) -> None:
        self.step_loss[self.num_steps] = loss
        self.num_steps += 1

    def on_steps_end(self, trainer: "Trainer", first_step: int, losses: np.ndarray) -> None:
        self.step_loss[self.num_steps : self.num_steps + len(losses)] = losses
        self.num_steps += len(losses)

    def on_validation_end(self, trainer: "Trainer", logs: dict[str, float]) -> None:
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

    Counted in validation checks, as the seed report does (patience 50). With
    ``restore_best_weights`` the model gets the best weights back when training ends.
    """

    def __init__(self, *, patience: int, min_delta: float = 0.0, monitor: str = "val_loss",
                 restore_best_weights: bool = False) -> None:
        self.patience = patience
        self.min_delta = min_delta
        self.monitor = monitor
        self.restore_best_weights = restore_best_weights
        self.reset()

    def on_train_begin(self, trainer: "Trainer") -> None:
        if self.stopped_step is not None:  # resumed after early stopping had already fired
            trainer.stop_training = True

    def reset(self) -> None:
        self.best = math.inf
        self.best_step: int | None = None
        self.wait = 0
        self.stopped_step: int | None = None
        self.best_weights: list[np.ndarray] | None = None

    def on_validation_end(self, trainer: "Trainer", logs: dict[str, float]) -> None:
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

    def on_train_end(self, trainer: "Trainer") -> None:
        # not on Ctrl-C: the checkpoint saved next must hold the current weights to resume exactly
        if self.restore_best_weights and self.best_weights is not None and not trainer.state.interrupted:
            for p, best in zip(trainer.model.parameters(), self.best_weights):
                p[...] = best

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"best": self.best, "best_step": self.best_step, "wait": self.wait,
                                 "stopped_step": self.stopped_step}
        if self.best_weights is not None:
            state["best_weights"] = [w.copy() for w in self.best_weights]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_step = float(state["best"]), state["best_step"]
        self.wait, self.stopped_step = int(state["wait"]), state["stopped_step"]
        self.best_weights = [np.array(w) for w in state["best_weights"]] if "best_weights" in state else None


class ProgressBar(Callback):
    """A tqdm bar over gradient steps with the live loss and latest validation metrics.

    Quiet when stderr is not a terminal (CI logs, pipes), unless forced.
    """

    def __init__(self, *, enabled: bool | None = None, description: str = "train") -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.description = description
        self.bar = None
        self._postfix: dict[str, str] = {}

    def on_train_begin(self, trainer: "Trainer") -> None:
        if not self.enabled:
            return
        from tqdm.auto import tqdm

        self.bar = tqdm(total=trainer.total_steps, initial=trainer.state.step, desc=self.description,
                        unit="step", dynamic_ncols=True, leave=True, mininterval=0.2)

    def on_step_end(self, trainer: "Trainer", step: int, loss: float) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if step % 25 == 0:
                self._postfix["loss"] = f"{loss:.4f}"
                self.bar.set_postfix(self._postfix, refresh=False)

    def on_steps_end(self, trainer: "Trainer", first_step: int, losses: np.ndarray) -> None:
        if self.bar is not None and len(losses):
            self._postfix["loss"] = f"{losses[-1]:.4f}"
            self.bar.set_postfix(self._postfix, refresh=False)
            self.bar.update(len(losses))

    def on_validation_end(self, trainer: "Trainer", logs: dict[str, float]) -> None:
        if self.bar is not None:
            self._postfix.update(val_loss=f"{logs['val_loss']:.4f}", val_acc=f"{logs['val_accuracy']:.4f}")

    def on_train_end(self, trainer: "Trainer") -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class Checkpointer(Callback):
    """Save the trainer's full state at the start, every ``every`` validation checks and at the end.

    Keeps the ``keep`` newest files so that a corrupt latest checkpoint can fall back on the
    one before. Nothing is saved after a divergence: the last good checkpoint stays the latest.
    """

    def __init__(self, directory, *, every: int, keep: int = 2) -> None:
        from pathlib import Path

        self.directory = Path(directory)
        self.every = every
        self.keep = keep
        self._checks = 0
        self.elapsed_before = 0.0  # training seconds spent before a resume
        self._started = time.perf_counter()

    @property
    def elapsed_s(self) -> float:
        """Training wall time so far, across resumes."""
        return self.elapsed_before + time.perf_counter() - self._started

    def _save(self, trainer: "Trainer") -> None:
        from mlpkit.train.checkpoint import save_checkpoint

        path = self.directory / f"step-{trainer.state.step:09d}.npz"
        save_checkpoint(path, trainer.state_dict())
        for old in sorted(self.directory.glob("step-*.npz"))[: -self.keep]:
            old.unlink(missing_ok=True)

    def on_train_begin(self, trainer: "Trainer") -> None:
        self._started = time.perf_counter()
        if self.every and trainer.state.step == 0:  # a good state to fall back on from the start
            self._save(trainer)

    def on_validation_end(self, trainer: "Trainer", logs: dict[str, float]) -> None:
        self._checks += 1
        if self.every and self._checks % self.every == 0:
            self._save(trainer)

    def on_train_end(self, trainer: "Trainer") -> None:
        if not trainer.state.diverged and trainer.state.step > 0:
            self._save(trainer)

    def state_dict(self) -> dict[str, Any]:
        # the cadence of checkpoints and the wall time carry over a resume
        return {"checks": self._checks, "elapsed_s": self.elapsed_s}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._checks = int(state.get("checks", 0))
        self.elapsed_before = float(state.get("elapsed_s", 0.0))
