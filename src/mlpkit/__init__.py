"""mlpkit: multilayer perceptrons from scratch in NumPy, with hand-written backpropagation."""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import (  # noqa: E402
    CheckpointError,
    ConfigError,
    DataError,
    DivergenceError,
    InputError,
    MlpkitError,
)
from .model import MLP  # noqa: E402
from .optim import SGD  # noqa: E402

__all__ = [
    "MLP",
    "SGD",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "DivergenceError",
    "InputError",
    "MlpkitError",
    "__version__",
]
