"""Shared basics every layer may use: errors, aligned array buffers, atomic files, metrics (NumPy only).

The error classes and the version are loaded eagerly (they import nothing); the rest on first
use (PEP 562), so that ``import mlpkit`` stays free of NumPy until something needs it.
"""

from __future__ import annotations

from mlpkit.core.errors import CheckpointError, ConfigError, DataError, DivergenceError, InputError, MlpkitError
from mlpkit.core.lazy import lazy_exports

_LAZY = {
    "ALIGNMENT": "mlpkit.core.arrays",
    "aligned_zeros": "mlpkit.core.arrays",
    "flat_span": "mlpkit.core.arrays",
    "input_array": "mlpkit.core.arrays",
    "RunIOError": "mlpkit.core.fileio",
    "atomic_save_npz": "mlpkit.core.fileio",
    "atomic_write_bytes": "mlpkit.core.fileio",
    "atomic_write_json": "mlpkit.core.fileio",
    "atomic_write_text": "mlpkit.core.fileio",
    "fsync_dir": "mlpkit.core.fileio",
    "accuracy": "mlpkit.core.metrics",
    "confusion_matrix": "mlpkit.core.metrics",
    "most_confused_pairs": "mlpkit.core.metrics",
    "per_class_accuracy": "mlpkit.core.metrics",
}

__all__ = [
    "ALIGNMENT",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "DivergenceError",
    "InputError",
    "MlpkitError",
    "RunIOError",
    "accuracy",
    "aligned_zeros",
    "atomic_save_npz",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "confusion_matrix",
    "flat_span",
    "fsync_dir",
    "input_array",
    "most_confused_pairs",
    "per_class_accuracy",
]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
