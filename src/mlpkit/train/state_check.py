"""What a resumed run reads from a checkpoint is checked before any of it is used.

Why a separate check: a checkpoint passes the file-level checks of ``train.checkpoint`` (no
pickles, sizes, CRCs) and may still be wrong for this run: edited by hand, from another run, or
damaged in a way no checksum covers. Every value the trainer would trust is checked against
the run's geometry (training set size, steps per epoch, validation cadence, parameter shapes
and dtype); anything else is a :class:`~mlpkit.core.errors.CheckpointError` naming the field.
A sample order that is not a permutation of the training indices would make the compiled
kernels read outside the training array, so it is refused here, before a kernel sees it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlpkit.core.errors import CheckpointError


@dataclass(frozen=True)
class RunGeometry:
    """The facts of a run that a checkpoint of it must agree with.

    Parameters
    ----------
    n_train : int
        Training samples.
    steps_per_epoch : int
        Gradient steps an epoch.
    validate_every : int
        Steps between validations (0: never).
    parameter_shapes : dict of str to tuple of int
        The model's parameters by name, in order.
    dtype : numpy.dtype
        The model's dtype: weights and velocities must have exactly this dtype.
    optimizer_spec : dict of str to (shape, dtype), optional
        The optimizer's state entries (``Optimizer.state_spec()``); None: SGD's velocities.
    schedules : tuple of str
        The learning-rate schedules whose states the checkpoint must hold.
    """

    n_train: int
    steps_per_epoch: int
    validate_every: int
    parameter_shapes: Mapping[str, tuple[int, ...]]
    dtype: np.dtype
    optimizer_spec: Mapping[str, tuple[tuple[int, ...], np.dtype]] | None = None
    schedules: tuple[str, ...] = ()


def _fail(source: str, message: str) -> CheckpointError:
    return CheckpointError(f"checkpoint {source} {message}" if source else f"checkpoint {message}")


def _int(state: Mapping[str, Any], key: str, source: str, low: int, high: int | None = None) -> int:
    value = state.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise _fail(source, f"has a {key} that is not an integer: {value!r}")
    value = int(value)
    if value < low or (high is not None and value > high):
        raise _fail(source, f"has {key} = {value}, outside {low}..{'' if high is None else high}")
    return value


def _arrays(
    found: Any,
    expected: Mapping[str, tuple[int, ...]],
    dtype: np.dtype | Mapping[str, np.dtype],
    what: str,
    source: str,
) -> None:
    if not isinstance(found, Mapping) or sorted(found) != sorted(expected):
        names = sorted(found) if isinstance(found, Mapping) else type(found).__name__
        raise _fail(source, f"holds {what} {names}, this run has {sorted(expected)}")
    dtypes = dtype if isinstance(dtype, Mapping) else dict.fromkeys(expected, dtype)
    for name, shape in expected.items():
        value, dtype = found[name], dtypes[name]
        if not isinstance(value, np.ndarray) or value.dtype != dtype or value.shape != tuple(shape):
            got = f"{value.dtype} {value.shape}" if isinstance(value, np.ndarray) else type(value).__name__
            raise _fail(source, f"has {what} {name} of {got}, expected {dtype} {tuple(shape)}")
        if not np.isfinite(value).all():
            raise _fail(source, f"has non-finite values in {what} {name}")


def check_sample_order(perm: Any, n_train: int, source: str) -> np.ndarray:
    """``perm`` as an intp array if it is a permutation of ``0 .. n_train - 1``, else CheckpointError."""
    if not isinstance(perm, np.ndarray) or perm.ndim != 1 or not np.issubdtype(perm.dtype, np.integer):
        raise _fail(source, f"has a sample order that is not a 1-D integer array ({type(perm).__name__})")
    if len(perm) != n_train:
        raise _fail(source, f"has a sample order of {len(perm)} indices for a training set of {n_train}")
    if n_train and (
        perm.min() < 0 or perm.max() >= n_train or np.bincount(perm.astype(np.intp), minlength=n_train).max() != 1
    ):
        raise _fail(source, f"has a sample order that is not a permutation of 0..{n_train - 1}")
    return perm.astype(np.intp)


def check_trainer_state(state: Any, geometry: RunGeometry, *, source: str = "") -> None:
    """Raise CheckpointError unless ``state`` (``Trainer.state_dict()`` read back) fits ``geometry``.

    Checks the counters against each other (step = epoch x steps_per_epoch + step_in_epoch),
    the sample order, the weights and velocities (names, shapes, exact dtype, finite), the last
    finite and the first loss (None or finite), and the history's lengths against the step counter.
    """
    if not isinstance(state, Mapping):
        raise _fail(source, f"holds a {type(state).__name__}, not a training state")
    perm = state.get("perm")
    if perm is not None:  # first: an order of another run names the training set size
        check_sample_order(perm, geometry.n_train, source)
    spe = geometry.steps_per_epoch
    epoch = _int(state, "epoch", source, 0)
    step_in_epoch = _int(state, "step_in_epoch", source, 0, spe)
    step = _int(state, "step", source, 0)
    if step != epoch * spe + step_in_epoch:
        raise _fail(
            source,
            f"has inconsistent counters: step {step} is not epoch {epoch} x {spe} steps"
            f" + {step_in_epoch} steps into the epoch",
        )
    if perm is None and step_in_epoch:
        raise _fail(source, f"is {step_in_epoch} steps into an epoch but has no sample order")
    loss = state.get("last_finite_loss")
    if loss is not None and (isinstance(loss, bool) or not isinstance(loss, (int, float)) or not math.isfinite(loss)):
        raise _fail(source, f"has a last finite loss that is not a finite number: {loss!r}")
    if step and loss is None:
        raise _fail(source, f"is at step {step} but records no loss")
    first = state.get("first_loss")  # absent or None in a state saved before its first step's loss
    if first is not None and (
        isinstance(first, bool) or not isinstance(first, (int, float)) or not math.isfinite(first) or first < 0
    ):
        raise _fail(source, f"has a first loss that is not a finite number >= 0: {first!r}")
    _arrays(state.get("model"), geometry.parameter_shapes, geometry.dtype, "weights", source)
    if geometry.optimizer_spec is None:
        velocities = {f"velocity.{i}": s for i, s in enumerate(geometry.parameter_shapes.values())}
        _arrays(state.get("optimizer"), velocities, geometry.dtype, "optimizer state", source)
    else:
        spec = geometry.optimizer_spec
        shapes = {name: shape for name, (shape, _) in spec.items()}
        _arrays(state.get("optimizer"), shapes, {name: dt for name, (_, dt) in spec.items()}, "optimizer state", source)
    schedules = state.get("schedules", {})
    if not isinstance(schedules, Mapping) or sorted(schedules) != sorted(geometry.schedules):
        found = sorted(schedules) if isinstance(schedules, Mapping) else type(schedules).__name__
        raise _fail(source, f"holds learning-rate schedule states {found}, this run has {sorted(geometry.schedules)}")
    if not isinstance(state.get("rng"), Mapping):
        raise _fail(source, "has no random generator state")
    callbacks = state.get("callbacks")
    if not isinstance(callbacks, Mapping):
        raise _fail(source, "has no callback states")
    if "History" in callbacks:
        _check_history(callbacks["History"], step, geometry, source)


def _check_history(history: Any, step: int, geometry: RunGeometry, source: str) -> None:
    if not isinstance(history, Mapping):
        raise _fail(source, "has a malformed history")
    losses = history.get("step_loss")
    if not isinstance(losses, np.ndarray) or losses.ndim != 1 or len(losses) != step:
        n = len(losses) if isinstance(losses, np.ndarray) and losses.ndim == 1 else "no"
        raise _fail(source, f"has a loss history of {n} steps for step {step}")
    if not np.issubdtype(losses.dtype, np.floating) or not np.isfinite(losses).all():
        raise _fail(source, "has a loss history with non-finite or non-float values")
    checks = step // geometry.validate_every if geometry.validate_every else 0
    validation = history.get("validation")
    if not isinstance(validation, Mapping):
        raise _fail(source, "has a malformed validation history")
    for key, values in validation.items():
        if not isinstance(values, Sequence) or len(values) != checks:
            n = len(values) if isinstance(values, Sequence) else "no"
            raise _fail(source, f"has {n} validation records of {key} for {checks} validations up to step {step}")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
            raise _fail(source, f"has non-numeric or non-finite validation records of {key}")
