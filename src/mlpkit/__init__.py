"""mlpkit: multilayer perceptrons from scratch in NumPy, with hand-written backpropagation.

The public API is re-exported here. Importing mlpkit does not import Numba (the compiled
engine loads it on first use) nor matplotlib.
"""

from __future__ import annotations

from mlpkit.core.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    DivergenceError,
    InputError,
    MlpkitError,
)
from mlpkit.core.version import __version__
from mlpkit.data.mnist import load_mnist
from mlpkit.nn.mlp import MLP
from mlpkit.optim.sgd import SGD
from mlpkit.train.callbacks import Callback, Checkpointer, EarlyStopping, History, ProgressBar
from mlpkit.train.trainer import Trainer

__all__ = [
    "MLP",
    "SGD",
    "Callback",
    "CheckpointError",
    "Checkpointer",
    "ConfigError",
    "DataError",
    "DivergenceError",
    "EarlyStopping",
    "History",
    "InputError",
    "MlpkitError",
    "ProgressBar",
    "Trainer",
    "__version__",
    "load_mnist",
]
