"""mlpkit: multilayer perceptrons from scratch in NumPy, with hand-written backpropagation."""

from __future__ import annotations

__version__ = "0.1.0"

from mlpkit.core.errors import (  # noqa: E402
    CheckpointError,
    ConfigError,
    DataError,
    DivergenceError,
    InputError,
    MlpkitError,
)
from mlpkit.nn.mlp import MLP  # noqa: E402
from mlpkit.optim.sgd import SGD  # noqa: E402

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
