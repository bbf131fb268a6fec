"""Optimizers and schedules by name, as a config names them; unknown names and options are
one ConfigError line listing what exists (values are checked by the constructors)."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mlpkit.core.errors import ConfigError
from mlpkit.optim.adam import Adam, AdamW
from mlpkit.optim.optimizer import Optimizer
from mlpkit.optim.plateau import ReduceOnPlateau
from mlpkit.optim.rmsprop import RMSprop
from mlpkit.optim.schedules import CosineWithWarmup, ExponentialLR, HasLearningRate, OneCycle, Schedule, StepLR
from mlpkit.optim.sgd import SGD

__all__ = ["OPTIMIZERS", "SCHEDULES", "make_optimizer", "make_schedule", "options_of"]

OPTIMIZERS: dict[str, type[Optimizer]] = {cls.name: cls for cls in (SGD, Adam, AdamW, RMSprop)}
SCHEDULES: dict[str, type[Schedule]] = {
    cls.name: cls for cls in (StepLR, ExponentialLR, CosineWithWarmup, OneCycle, ReduceOnPlateau)
}


def options_of(cls: type) -> dict[str, inspect.Parameter]:
    """The keyword options of ``cls`` (its constructor's keyword-only parameters)."""
    params = inspect.signature(cls).parameters.values()
    return {p.name: p for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


def _lookup(kind: str, registry: Mapping[str, type], name: str, options: Mapping[str, Any]) -> type:
    if name not in registry:
        raise ConfigError(f"unknown {kind} {name!r}; choose one of {', '.join(sorted(registry))}")
    cls = registry[name]
    known = options_of(cls)
    for key in options:
        if key not in known:
            raise ConfigError(f"{kind} {name!r} has no option {key!r}; its options: {', '.join(known)}")
    missing = [key for key, p in known.items() if p.default is inspect.Parameter.empty and key not in options]
    if missing:
        raise ConfigError(f"{kind} {name!r} needs {', '.join(missing)}")
    return cls


def make_optimizer(name: str, params: Sequence[np.ndarray], **options: Any) -> Optimizer:
    """The optimizer ``name`` (a key of OPTIMIZERS) over ``params``, with keyword ``options``.

    Parameters
    ----------
    name : str
        "sgd", "adam", "adamw" or "rmsprop".
    params : sequence of ndarray
        The arrays to update in place (``model.parameters()``).
    **options
        The optimizer's keyword arguments (``lr``, ``momentum``, ``betas``, ...).

    Raises
    ------
    ConfigError
        An unknown name or option, a missing required option, or a value out of range.
    """
    return _lookup("optimizer", OPTIMIZERS, name, options)(params, **options)


def make_schedule(name: str, optimizer: HasLearningRate, **options: Any) -> Schedule:
    """The schedule ``name`` (a key of SCHEDULES) driving ``optimizer.lr``, with keyword ``options``.

    Parameters
    ----------
    name : str
        "step", "exponential", "cosine_warmup", "one_cycle" or "reduce_on_plateau".
    optimizer : optimizer
        Whose ``lr`` the schedule sets (made after the optimizer, from its lr).
    **options
        The schedule's keyword arguments (``gamma``, ``total_steps``, ...).

    Raises
    ------
    ConfigError
        An unknown name or option, a missing required option, or a value out of range.
    """
    return _lookup("schedule", SCHEDULES, name, options)(optimizer, **options)
