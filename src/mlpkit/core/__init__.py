"""Shared basics every layer may use: errors, aligned array buffers, atomic files, metrics (NumPy only)."""

from mlpkit.core.arrays import ALIGNMENT, aligned_zeros, flat_span, input_array
from mlpkit.core.errors import CheckpointError, ConfigError, DataError, DivergenceError, InputError, MlpkitError
from mlpkit.core.fileio import (
    RunIOError,
    atomic_save_npz,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    fsync_dir,
)
from mlpkit.core.metrics import accuracy, confusion_matrix, most_confused_pairs, per_class_accuracy

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
