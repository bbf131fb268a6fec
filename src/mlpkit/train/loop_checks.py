"""Small checks of the training loop's arguments and callbacks (kept apart from the loop)."""

from __future__ import annotations

import numpy as np

from mlpkit.core.errors import ConfigError, DivergenceError
from mlpkit.nn.mlp import MLP
from mlpkit.train.callbacks import Callback

__all__ = ["check_count", "check_prepared", "divergence_error", "epoch_steps", "overrides"]


def check_count(name: str, value: object, minimum: int) -> int:
    """``value`` as an int >= ``minimum``, or a ConfigError naming it (bools and 2.5 are refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_prepared(model: MLP, x: np.ndarray, y: np.ndarray, which: str) -> np.ndarray:
    """Clear errors for arrays that did not come from ``model.prepare_inputs``; the labels as intp."""
    model.check_prepared(x, f"{which} inputs")
    return model.check_labels(y, len(x))


def overrides(cb: Callback, hook: str) -> bool:
    """Does ``cb`` do something in ``hook`` (a method of its class, or one set on the instance)?"""
    return getattr(type(cb), hook) is not getattr(Callback, hook) or hook in vars(cb)


def divergence_error(step: int, what: str, last_finite_loss: float | None) -> DivergenceError:
    """The one message of a diverged run: where, what, and the remedy."""
    return DivergenceError(
        f"training diverged at step {step}: {what} (last finite loss {last_finite_loss}); lower the learning rate",
        step=step,
        last_finite_loss=last_finite_loss,
    )


def epoch_steps(n_train: int, batch_size: int, drop_last: bool) -> int:
    """Gradient steps an epoch: full batches, plus the last smaller one unless it is dropped."""
    full, rest = divmod(n_train, batch_size)
    return full if (drop_last or rest == 0) else full + 1
