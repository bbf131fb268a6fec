"""mlpkit: multilayer perceptrons from scratch in NumPy, with hand-written backpropagation.

The public API is re-exported here. Importing mlpkit does not import Numba (the compiled
engine loads it on first use) nor matplotlib.
"""

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
from mlpkit.data.mnist import load_mnist  # noqa: E402
from mlpkit.nn.mlp import MLP  # noqa: E402
from mlpkit.optim.sgd import SGD  # noqa: E402
from mlpkit.train.callbacks import Callback, Checkpointer, EarlyStopping, History, ProgressBar  # noqa: E402
from mlpkit.train.trainer import Trainer  # noqa: E402

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
