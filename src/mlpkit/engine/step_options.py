"""What a training step does besides forward, backward and the optimizer's update: dropout,
label smoothing, gradient clipping, a per-step learning-rate schedule and a max-norm constraint.

One value for all of them, so the trainer hands them to the planner in one piece and the
planner can say in one place why the compiled steps cannot run them (they then run on NumPy,
and the reason is recorded in ``metrics.json``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlpkit.core.errors import ConfigError

if TYPE_CHECKING:
    from mlpkit.nn.dropout import Dropout
    from mlpkit.optim.schedules import Schedule

__all__ = ["StepOptions"]


@dataclass(frozen=True)
class StepOptions:
    """Training-step options beyond the optimizer (all off by default: the seed's step).

    Parameters
    ----------
    dropout : Dropout or None
        Input and hidden dropout rates; masks are drawn from the training loop's generator.
    label_smoothing : float
        Of the cross-entropy's target, in [0, 1).
    clip_norm : float or None
        Clip the gradients to this global L2 norm before each update (torch's rule).
    max_norm : float or None
        After each update, rescale every hidden unit's incoming weights to norm <= this.
    schedule : Schedule or None
        A learning-rate schedule stepped after every update (a plateau schedule, which is
        stepped at validations, is the trainer's business and does not belong here).

    Raises
    ------
    ConfigError
        A clip or max norm that is not a finite positive number.
    """

    dropout: Dropout | None = None
    label_smoothing: float = 0.0
    clip_norm: float | None = None
    max_norm: float | None = None
    schedule: Schedule | None = None

    def __post_init__(self) -> None:
        for name in ("clip_norm", "max_norm"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")

    @property
    def dropout_active(self) -> bool:
        return self.dropout is not None and self.dropout.active

    @property
    def active(self) -> bool:
        """Whether any option changes the seed's plain step."""
        return (
            self.dropout_active
            or bool(self.label_smoothing)
            or self.clip_norm is not None
            or self.max_norm is not None
            or self.schedule is not None
        )

    def compiled_reason(self) -> str | None:
        """None when the compiled steps can run these options, else why not (for metrics.json).

        Every option has compiled code (:mod:`mlpkit.engine.option_kernels`): always None.
        """
        return None
