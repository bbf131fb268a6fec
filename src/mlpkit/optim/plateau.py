"""Reduce the learning rate when a validation metric stops improving.

Unlike the schedules of :mod:`mlpkit.optim.schedules`, this one is stepped with a metric at
each validation, not after every optimizer step (``needs_metric`` is True). It equals
``torch.optim.lr_scheduler.ReduceLROnPlateau``, decision for decision.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from mlpkit.core.errors import CheckpointError, ConfigError
from mlpkit.optim import hyperparameters as hp
from mlpkit.optim.schedules import HasLearningRate, Schedule, scalar_state

__all__ = ["ReduceOnPlateau"]


class ReduceOnPlateau(Schedule):
    """Multiply the lr by ``factor`` after more than ``patience`` validations without improvement.

    A metric improves on the best so far when it is below best * (1 - threshold) (mode "min",
    threshold_mode "rel"), above best * (1 + threshold) ("max", "rel"), or beyond best by
    ``threshold`` ("abs"). After a reduction, ``cooldown`` validations pass before bad ones
    count again. The lr never goes below ``min_lr``, and a reduction smaller than ``eps`` is
    skipped.

    Parameters
    ----------
    optimizer : optimizer
        Its ``lr`` is the starting lr.
    factor : float, default 0.1
        The reduction factor, in (0, 1).
    patience : int, default 10
        Validations without improvement tolerated before a reduction, >= 0.
    threshold : float, default 1e-4
        What counts as an improvement (see above), >= 0.
    mode : {"min", "max"}, default "min"
        Whether the metric (a loss, an accuracy) should go down or up.
    cooldown : int, default 0
        Validations after a reduction during which bad ones are not counted, >= 0.
    min_lr : float, default 0.0
        The lowest lr, >= 0.
    threshold_mode : {"rel", "abs"}, default "rel"
        Whether ``threshold`` is relative to the best or absolute.
    eps : float, default 1e-8
        The smallest reduction applied, >= 0.
    """

    name = "reduce_on_plateau"
    needs_metric = True

    def __init__(
        self,
        optimizer: HasLearningRate,
        *,
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        mode: str = "min",
        cooldown: int = 0,
        min_lr: float = 0.0,
        threshold_mode: str = "rel",
        eps: float = 1e-8,
    ) -> None:
        self.factor = hp.unit_interval(factor, "factor", closed_low=False)
        self.patience = hp.count(patience, "patience", minimum=0)
        self.threshold = hp.non_negative(threshold, "threshold")
        self.mode = hp.choice(mode, "mode", ("min", "max"))
        self.cooldown = hp.count(cooldown, "cooldown", minimum=0)
        self.min_lr = hp.non_negative(min_lr, "min_lr")
        self.threshold_mode = hp.choice(threshold_mode, "threshold_mode", ("rel", "abs"))
        self.eps = hp.non_negative(eps, "eps")
        self.best = math.inf if self.mode == "min" else -math.inf
        self.num_bad = 0
        self.cooldown_counter = 0
        super().__init__(optimizer)

    def _lr(self, t: int, current: float) -> float:
        return current  # the lr changes only in step(metric)

    def is_better(self, metric: float) -> bool:
        """Whether ``metric`` improves on the best so far (see the class docstring)."""
        best, threshold = self.best, self.threshold
        if self.mode == "min":
            return metric < (best * (1.0 - threshold) if self.threshold_mode == "rel" else best - threshold)
        return metric > (best * (threshold + 1.0) if self.threshold_mode == "rel" else best + threshold)

    def step(self, metric: float | None = None) -> float:
        """Record one validation's ``metric``; reduce the lr after too many without improvement.

        Returns the lr now. Raises ConfigError when no metric is given (this schedule needs one).
        """
        if metric is None:
            raise ConfigError("schedule 'reduce_on_plateau' is stepped with a validation metric")
        current = float(metric)
        self.last_step += 1
        if self.is_better(current):
            self.best, self.num_bad = current, 0
        else:
            self.num_bad += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad = 0  # bad validations in a cooldown do not count
        if self.num_bad > self.patience:
            old = float(self.optimizer.lr)
            new = max(old * self.factor, self.min_lr)
            if old - new > self.eps:
                self.optimizer.lr = new
            self.cooldown_counter, self.num_bad = self.cooldown, 0
        return float(self.optimizer.lr)

    def state_dict(self) -> dict[str, np.ndarray]:
        """The base state plus the best metric (inf before the first) and both counters."""
        return {
            **super().state_dict(),
            "best": np.array(self.best, dtype=np.float64),
            "num_bad": np.array(self.num_bad, dtype=np.int64),
            "cooldown_counter": np.array(self.cooldown_counter, dtype=np.int64),
        }

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        best = float(scalar_state(state, "best", "float"))
        num_bad, cooldown_counter = (int(scalar_state(state, key, "int")) for key in ("num_bad", "cooldown_counter"))
        if num_bad < 0 or cooldown_counter < 0 or math.isnan(best):
            raise CheckpointError("schedule state does not fit: negative counters or a best metric of nan")
        super().load_state_dict(state)
        self.best, self.num_bad, self.cooldown_counter = best, num_bad, cooldown_counter
