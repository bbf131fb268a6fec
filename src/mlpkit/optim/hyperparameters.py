"""Checks of optimizer and schedule hyperparameters: one ConfigError line each, naming the value.

Shared by the constructors (so a hand-built optimizer is checked like one made from a config)
and by the registries. Every check returns the value as a plain Python number.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

from mlpkit.core.errors import ConfigError


def number(value: object, name: str) -> float:
    """``value`` as a float, else ConfigError (booleans and strings are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    return float(value)


def _finite(result: float, name: str) -> float:
    if not math.isfinite(result):
        raise ConfigError(f"{name} must be finite, got {result}")
    return result


def learning_rate(value: object, name: str = "learning_rate") -> float:
    """A finite learning rate > 0."""
    return positive(value, name)


def positive(value: object, name: str) -> float:
    """A finite number > 0."""
    result = number(value, name)
    if not result > 0:  # nan too
        raise ConfigError(f"{name} must be > 0, got {value}")
    return _finite(result, name)


def non_negative(value: object, name: str) -> float:
    """A finite number >= 0."""
    result = number(value, name)
    if not result >= 0:
        raise ConfigError(f"{name} must be >= 0, got {value}")
    return _finite(result, name)


def unit_interval(value: object, name: str, *, closed_low: bool = True, closed_high: bool = False) -> float:
    """A number in [0, 1) by default; ``closed_low`` / ``closed_high`` say which ends belong."""
    result = number(value, name)
    low_ok = result >= 0 if closed_low else result > 0
    high_ok = result <= 1 if closed_high else result < 1
    if not (low_ok and high_ok):
        interval = f"{'[' if closed_low else '('}0, 1{']' if closed_high else ')'}"
        raise ConfigError(f"{name} must lie in {interval}, got {value}")
    return result


def count(value: object, name: str, *, minimum: int = 1) -> int:
    """An integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if int(value) < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def choice(value: object, name: str, options: tuple[str, ...]) -> str:
    """One of ``options``."""
    if value not in options:
        raise ConfigError(f"{name} must be one of {', '.join(map(repr, options))}, got {value!r}")
    return str(value)
