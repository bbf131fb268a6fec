"""Where training stands, and saving or restoring it: what a checkpoint holds of a trainer.

The state is checked against the run before any of it is used (:mod:`mlpkit.train.state_check`),
so a tampered or foreign checkpoint is refused instead of training on from a wrong place.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlpkit.core.errors import CheckpointError, ConfigError
from mlpkit.nn.mlp import MLP
from mlpkit.optim.optimizer import Optimizer
from mlpkit.optim.schedules import Schedule
from mlpkit.train.callbacks import Callback
from mlpkit.train.state_check import RunGeometry, check_sample_order, check_trainer_state

__all__ = ["TrainState", "load_training_state", "training_state_dict"]


@dataclass
class TrainState:
    """Where training stands; enough (with weights and optimizer) to resume exactly."""

    epoch: int = 0  # completed epochs
    step: int = 0  # completed gradient steps
    step_in_epoch: int = 0
    perm: np.ndarray | None = None  # this epoch's order of training indices
    interrupted: bool = False  # stopped by Ctrl-C, between two steps (resumable)
    diverged: bool = False
    aborted: bool = False  # stopped by an exception mid-step (e.g. a second Ctrl-C): never saved
    last_finite_loss: float | None = None
    first_loss: float | None = None  # the run's first training loss: the scale of an exploding loss
    extra: dict[str, Any] = field(default_factory=dict)


def training_state_dict(
    model: MLP,
    optimizer: Optimizer,
    rng: np.random.Generator,
    state: TrainState,
    callbacks: Sequence[Callback],
    schedules: Sequence[Schedule] = (),
) -> dict[str, Any]:
    """Everything needed to resume: weights, optimizer, schedules, RNG, position, callbacks."""
    saved = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "rng": copy.deepcopy(rng.bit_generator.state),
        "epoch": state.epoch,
        "step": state.step,
        "step_in_epoch": state.step_in_epoch,
        "perm": None if state.perm is None else state.perm.copy(),
        "last_finite_loss": state.last_finite_loss,
        "first_loss": state.first_loss,
        "callbacks": {type(cb).__name__: cb.state_dict() for cb in callbacks},
    }
    if schedules:  # absent without one: checkpoints of runs without schedules are as before
        saved["schedules"] = {sch.name: sch.state_dict() for sch in schedules}
    return saved


def load_training_state(
    model: MLP,
    optimizer: Optimizer,
    rng: np.random.Generator,
    callbacks: Sequence[Callback],
    saved: dict[str, Any],
    geometry: RunGeometry,
    *,
    epochs: int,
    source: str = "",
    schedules: Sequence[Schedule] = (),
) -> TrainState:
    """Check ``saved`` against ``geometry``, then load it into the model, optimizer, RNG and
    callbacks; return the position it describes (see ``Trainer.load_state_dict``)."""
    check_trainer_state(saved, geometry, source=source)
    done = int(saved["step"])
    if done > geometry.steps_per_epoch * epochs:
        needed = -(-done // geometry.steps_per_epoch)
        raise ConfigError(
            f"{source or 'the training state'} is at step {done} ({done / geometry.steps_per_epoch:g}"
            f" epochs done); {epochs} epochs are fewer: ask for at least {needed}"
        )
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    for sch in schedules:  # after the optimizer: a schedule's state holds the lr to continue with
        sch.load_state_dict(saved["schedules"][sch.name])
    rng.bit_generator.state = saved["rng"]
    state = TrainState(
        epoch=int(saved["epoch"]),
        step=done,
        step_in_epoch=int(saved["step_in_epoch"]),
        perm=None if saved["perm"] is None else check_sample_order(saved["perm"], geometry.n_train, source),
        last_finite_loss=saved["last_finite_loss"],
        first_loss=saved.get("first_loss"),  # absent from older checkpoints: the next loss sets it
    )
    states = saved["callbacks"]
    for cb in callbacks:
        name = type(cb).__name__
        if name in states:
            try:
                cb.load_state_dict(states[name])
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                raise CheckpointError(
                    f"{source or 'the training state'} has a malformed {name} state: {type(exc).__name__}: {exc}"
                ) from None
    return state
