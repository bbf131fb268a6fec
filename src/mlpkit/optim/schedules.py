"""Learning-rate schedules: each sets ``optimizer.lr``, the value the next optimizer step reads.

When they are stepped: every schedule here except :class:`ReduceOnPlateau` is stepped once
per optimizer step, right after it (``optimizer.step(grads); schedule.step()``), so its
count ``last_step`` is the number of optimizer steps done and the lr it sets is the one
step ``last_step + 1`` uses. Making a schedule sets the lr of the first step. A
:class:`ReduceOnPlateau` is stepped with a metric at each validation instead
(``needs_metric`` says which kind a schedule is).

Each equals its PyTorch counterpart (``torch.optim.lr_scheduler``) in float64, the same
arithmetic in the same order: StepLR and ExponentialLR multiply the current lr (so they
compose with anything else that sets it), the others compute it from the step. Each has a
``state_dict`` (plain arrays: the step, the lr, and what it keeps besides) so that a resumed
run continues bit-identically.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar, Protocol

import numpy as np

from mlpkit.core.errors import CheckpointError, ConfigError
from mlpkit.optim import hyperparameters as hp

__all__ = [
    "CosineWithWarmup",
    "ExponentialLR",
    "HasLearningRate",
    "OneCycle",
    "Schedule",
    "StepLR",
]


class HasLearningRate(Protocol):
    """What a schedule drives: anything with a learning rate read at each step (an optimizer)."""

    lr: float


def scalar_state(state: Mapping[str, np.ndarray], key: str, kind: str) -> float | int:
    """``state[key]`` as a Python number if it is a 0-d array of ``kind`` ("int" or "float"), else
    CheckpointError naming the key."""
    value = state.get(key)
    dtype = np.integer if kind == "int" else np.floating
    if not isinstance(value, np.ndarray) or value.shape != () or not np.issubdtype(value.dtype, dtype):
        raise CheckpointError(f"schedule state does not fit: {key} missing or not a {kind} scalar")
    return int(value) if kind == "int" else float(value)


class Schedule:
    """Base: the optimizer, the base lr (the optimizer's lr when the schedule is made), the count.

    Subclasses implement :meth:`_lr`, the lr after ``last_step`` steps given the current one.
    """

    name: ClassVar[str] = ""
    needs_metric: ClassVar[bool] = False

    def __init__(self, optimizer: HasLearningRate) -> None:
        self.optimizer = optimizer
        self.base_lr = float(optimizer.lr)
        self.last_step = 0
        optimizer.lr = self._lr(0, self.base_lr)

    def step(self) -> float:
        """Count one optimizer step done; set and return the lr of the next one."""
        self.last_step += 1
        lr = self._lr(self.last_step, float(self.optimizer.lr))
        self.optimizer.lr = lr
        return lr

    def _lr(self, t: int, current: float) -> float:
        raise NotImplementedError

    def state_dict(self) -> dict[str, np.ndarray]:
        """The count, the lr now and the base lr (float64 and int64 scalars)."""
        return {
            "step": np.array(self.last_step, dtype=np.int64),
            "lr": np.array(self.optimizer.lr, dtype=np.float64),
            "base_lr": np.array(self.base_lr, dtype=np.float64),
        }

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Continue from a :meth:`state_dict`: sets the count, the base lr and the optimizer's lr.

        CheckpointError naming the key when one is missing or malformed; nothing is changed then.
        """
        step = int(scalar_state(state, "step", "int"))
        lr, base_lr = float(scalar_state(state, "lr", "float")), float(scalar_state(state, "base_lr", "float"))
        if step < 0:
            raise CheckpointError(f"schedule state does not fit: step is {step}, not a count >= 0")
        self.last_step, self.base_lr, self.optimizer.lr = step, base_lr, lr


class StepLR(Schedule):
    """Multiply the lr by ``gamma`` every ``step_size`` steps (``torch.optim.lr_scheduler.StepLR``).

    Parameters
    ----------
    optimizer : optimizer
        Its ``lr`` is the base lr, then set at every step.
    step_size : int
        Steps between two decays, >= 1.
    gamma : float, default 0.1
        The factor, > 0.
    """

    name = "step"

    def __init__(self, optimizer: HasLearningRate, *, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = hp.count(step_size, "step_size")
        self.gamma = hp.positive(gamma, "gamma")
        super().__init__(optimizer)

    def _lr(self, t: int, current: float) -> float:
        return current * self.gamma if t and t % self.step_size == 0 else current


class ExponentialLR(Schedule):
    """Multiply the lr by ``gamma`` at every step (``torch.optim.lr_scheduler.ExponentialLR``).

    Parameters
    ----------
    optimizer : optimizer
        Its ``lr`` is the base lr, then set at every step.
    gamma : float
        The factor, > 0.
    """

    name = "exponential"

    def __init__(self, optimizer: HasLearningRate, *, gamma: float) -> None:
        self.gamma = hp.positive(gamma, "gamma")
        super().__init__(optimizer)

    def _lr(self, t: int, current: float) -> float:
        return current * self.gamma if t else current


class CosineWithWarmup(Schedule):
    """Linear warm-up from 0 to the base lr, then a cosine decay to ``min_lr``.

    After t steps: base * t / warmup while t < warmup, then
    min_lr + (base - min_lr) (1 + cos(pi (t - warmup) / (total - warmup))) / 2 until
    ``total_steps``, then min_lr. The first step (t = 0) has lr 0 when there is a warm-up (as
    Hugging Face's ``get_cosine_schedule_with_warmup``, which is this with min_lr = 0).

    Parameters
    ----------
    optimizer : optimizer
        Its ``lr`` is the peak (base) lr.
    warmup_steps : int
        Steps of linear warm-up, >= 0 (0: start at the base lr).
    total_steps : int
        Steps of the whole schedule, > warmup_steps.
    min_lr : float, default 0.0
        The lr at the end, >= 0 and at most the base lr.
    """

    name = "cosine_warmup"

    def __init__(self, optimizer: HasLearningRate, *, warmup_steps: int, total_steps: int, min_lr: float = 0.0) -> None:
        self.warmup_steps = hp.count(warmup_steps, "warmup_steps", minimum=0)
        self.total_steps = hp.count(total_steps, "total_steps", minimum=self.warmup_steps + 1)
        self.min_lr = hp.non_negative(min_lr, "min_lr")
        if self.min_lr > optimizer.lr:
            raise ConfigError(f"min_lr must be at most the learning rate {optimizer.lr}, got {min_lr}")
        super().__init__(optimizer)

    def _lr(self, t: int, current: float) -> float:
        if t < self.warmup_steps:
            return self.base_lr * t / self.warmup_steps
        if t >= self.total_steps:
            return self.min_lr
        progress = (t - self.warmup_steps) / (self.total_steps - self.warmup_steps)
        return self.min_lr + (self.base_lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


class OneCycle(Schedule):
    """Smith's one-cycle policy: from max_lr / div_factor up to max_lr, then down to far below.

    ``torch.optim.lr_scheduler.OneCycleLR`` (two phases, no momentum cycling): the lr anneals
    from max_lr / div_factor to max_lr over the first ``pct_start`` of ``total_steps``, then
    to max_lr / (div_factor * final_div_factor) at step total_steps - 1, where it stays (PyTorch
    refuses to step further). The optimizer's own lr is not used.

    Parameters
    ----------
    optimizer : optimizer
        Its ``lr`` is set at every step.
    max_lr : float
        The peak lr, > 0.
    total_steps : int
        Steps of the cycle, >= 2.
    pct_start : float, default 0.3
        The rising part's share of the cycle, in (0, 1), spanning more than one step.
    div_factor : float, default 25.0
        The first lr is max_lr / div_factor (> 0).
    final_div_factor : float, default 1e4
        The last lr is the first lr / final_div_factor (> 0).
    anneal : {"cos", "linear"}, default "cos"
        The shape of both phases.
    """

    name = "one_cycle"

    def __init__(
        self,
        optimizer: HasLearningRate,
        *,
        max_lr: float,
        total_steps: int,
        pct_start: float = 0.3,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        anneal: str = "cos",
    ) -> None:
        self.max_lr = hp.positive(max_lr, "max_lr")
        self.total_steps = hp.count(total_steps, "total_steps", minimum=2)
        self.pct_start = hp.unit_interval(pct_start, "pct_start", closed_low=False)
        if self.pct_start * self.total_steps <= 1:
            raise ConfigError(
                f"pct_start x total_steps must be > 1 (the rising phase spans more than one step),"
                f" got {pct_start} x {total_steps}"
            )
        self.div_factor = hp.positive(div_factor, "div_factor")
        self.final_div_factor = hp.positive(final_div_factor, "final_div_factor")
        self.anneal = hp.choice(anneal, "anneal", ("cos", "linear"))
        self.initial_lr = self.max_lr / self.div_factor
        self.min_lr = self.initial_lr / self.final_div_factor
        self._phases = (
            (float(self.pct_start * self.total_steps) - 1, self.initial_lr, self.max_lr),
            (float(self.total_steps - 1), self.max_lr, self.min_lr),
        )
        super().__init__(optimizer)

    def _lr(self, t: int, current: float) -> float:
        t = min(t, self.total_steps - 1)
        start_step = 0.0
        for i, (end_step, start_lr, end_lr) in enumerate(self._phases):
            if t <= end_step or i == len(self._phases) - 1:
                pct = (t - start_step) / (end_step - start_step)
                if self.anneal == "cos":
                    return end_lr + (start_lr - end_lr) / 2.0 * (math.cos(math.pi * pct) + 1)
                return (end_lr - start_lr) * pct + start_lr
            start_step = end_step
        raise AssertionError("unreachable: the last phase always answers")
