"""Exception types: every failure a user can cause has its own class and a message naming
what is wrong, so callers can catch them and the CLI can print them without a traceback."""

from __future__ import annotations


class MlpkitError(Exception):
    """Base class of all errors mlpkit raises on purpose."""


class DataError(MlpkitError):
    """A dataset file is missing, malformed, corrupt, or does not match its checksum."""


class ConfigError(MlpkitError, ValueError):
    """A configuration key, type or value is invalid (raised before any work is done)."""


class InputError(MlpkitError, ValueError):
    """Arrays given to the Python API have the wrong shape, dtype, range or non-finite values."""


class CheckpointError(MlpkitError):
    """A checkpoint or weights file is corrupt, unsafe, or does not fit the model."""


class DivergenceError(MlpkitError):
    """Training produced a non-finite loss or weight."""

    def __init__(self, message: str, *, step: int, last_finite_loss: float | None) -> None:
        super().__init__(message)
        self.step = step
        self.last_finite_loss = last_finite_loss
