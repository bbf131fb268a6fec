"""mlpkit: multilayer perceptrons from scratch in NumPy, with hand-written backpropagation.

The public API is re-exported here, loaded on first use (PEP 562): ``import mlpkit`` costs
next to nothing, imports neither NumPy, Numba nor matplotlib, and leaves the command line's
entry point (``mlpkit.__main__``) in charge of Ctrl-C from its first instruction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlpkit.core import blas_env
from mlpkit.core.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    DivergenceError,
    InputError,
    MlpkitError,
)
from mlpkit.core.lazy import lazy_exports
from mlpkit.core.version import __version__

blas_env.shorten_spin()  # before NumPy loads OpenBLAS, if it has not yet

if TYPE_CHECKING:  # pragma: no cover
    from mlpkit.adapters.sklearn import MLPClassifier
    from mlpkit.data.mnist import load_mnist
    from mlpkit.nn.mlp import MLP
    from mlpkit.optim.sgd import SGD
    from mlpkit.runs.model_file import load_model, save_model
    from mlpkit.train.callbacks import Callback, Checkpointer, EarlyStopping, History, ProgressBar
    from mlpkit.train.trainer import Trainer

#: public name -> the module that defines it (imported when the name is first used)
_LAZY = {
    "MLP": "mlpkit.nn.mlp",
    "MLPClassifier": "mlpkit.adapters.sklearn",
    "SGD": "mlpkit.optim.sgd",
    "Trainer": "mlpkit.train.trainer",
    "Callback": "mlpkit.train.callbacks",
    "Checkpointer": "mlpkit.train.callbacks",
    "EarlyStopping": "mlpkit.train.callbacks",
    "History": "mlpkit.train.callbacks",
    "ProgressBar": "mlpkit.train.callbacks",
    "load_mnist": "mlpkit.data.mnist",
    "load_model": "mlpkit.runs.model_file",
    "save_model": "mlpkit.runs.model_file",
}

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
    "MLPClassifier",
    "MlpkitError",
    "ProgressBar",
    "Trainer",
    "__version__",
    "load_mnist",
    "load_model",
    "save_model",
]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
