"""The files of a run folder: their names and what each holds, in one place.

Writers (``mlpkit.workflows.experiment``) and readers (`mlpkit.runs.folder`, the reports)
name the files only through these constants. A run folder is enough to report on (plots and
HTML are made from it, never from live objects) and, with its checkpoints, enough to resume.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mlpkit.core.errors import MlpkitError

__all__ = [
    "CHECKPOINTS",
    "CHECKPOINT_GLOB",
    "CHECKSUMS",
    "COMMITTED",
    "CONFIG",
    "DIVERGED",
    "ENVIRONMENT",
    "FIGURES",
    "FILES",
    "HISTORY",
    "LOCK",
    "METRICS",
    "METRICS_PARTIAL",
    "MODEL",
    "PREDICTIONS",
    "PROGRESS",
    "REQUIRED",
    "TEMPORARY_GLOB",
    "WEIGHTS",
    "WEIGHTS_FORMAT",
]

CONFIG = "config.toml"
ENVIRONMENT = "environment.json"
HISTORY = "history.json"
#: Rewritten while a run trains (`mlpkit.train.progress_file`): what a live reader follows.
PROGRESS = "progress.json"
METRICS = "metrics.json"
METRICS_PARTIAL = "metrics.partial.json"
DIVERGED = "diverged.json"
WEIGHTS = "weights.npz"
MODEL = "model.safetensors"
PREDICTIONS = "predictions.npz"
FIGURES = "figures"
CHECKPOINTS = "checkpoints"
#: Checkpoint files inside CHECKPOINTS (``step-000001875.npz``, named by ``train.callbacks.Checkpointer``).
CHECKPOINT_GLOB = "step-*.npz"
#: Temporary files of atomic writes (``core.fileio``) that a killed process may leave behind.
TEMPORARY_GLOB = ".*.tmp"
#: The lock file of the process writing the folder (`mlpkit.runs.lock`): never a run file, and
#: ignored wherever a folder's emptiness or contents are judged.
LOCK = ".mlpkit.lock"
#: The result files a run commits as one unit (`mlpkit.runs.completion`): metrics.json (or
#: metrics.partial.json), written after them, records their SHA-256 under CHECKSUMS.
COMMITTED = (HISTORY, WEIGHTS, PREDICTIONS)  # not MODEL: its provenance holds a time
#: The entry of metrics.json that maps each of COMMITTED to its SHA-256 (hex): the completion marker.
CHECKSUMS = "sha256"
#: The ``format`` recorded in a weights file's metadata.
WEIGHTS_FORMAT = "mlpkit-weights"

#: Name -> what it holds.
FILES: dict[str, str] = {
    CONFIG: "the resolved configuration (mlpkit train RUN/config.toml reruns it; --resume reads it)",
    ENVIRONMENT: "seed, versions, BLAS and thread count, machine",
    HISTORY: "training loss per step; validation metrics per check",
    PROGRESS: "rewritten while training: step, total, wall time, curves so far, early-stopping state"
    " (what mlpkit serve's live page follows)",
    METRICS: "final metrics of a finished run (losses, accuracies, steps, normalization, engine) and the"
    " SHA-256 of history, weights and predictions; written last, it marks the run as finished",
    METRICS_PARTIAL: "the same metrics and checksums for a run stopped by Ctrl-C (resumable)",
    DIVERGED: "where and why training diverged, and the last good checkpoint",
    WEIGHTS: "parameters by name plus __meta__: architecture, dtype and normalization (plain arrays, no pickle)",
    MODEL: "the trained model with its normalization, classes and input shape (mlpkit.runs.model_file;"
    " what mlpkit predict reads)",
    PREDICTIONS: "validation labels, predictions, probabilities, the most confident mistakes' images",
    FIGURES: "loss and accuracy against the gradient step (PNG and SVG)",
    CHECKPOINTS: "the newest checkpoints (mlpkit.train.checkpoint format)",
    LOCK: "held by the process writing the folder (PID, host, start); meaningless without its lock",
}
#: What a finished run folder must hold to be read back (`mlpkit.runs.folder.load_run`).
REQUIRED = (CONFIG, HISTORY, METRICS)
#: Entries of metrics.json that are numbers (or null) when present.
NUMERIC_METRICS = (
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "num_parameters",
    "steps",
    "epochs_completed",
    "early_stop_step",
    "best_val_loss",
    "best_val_loss_step",
    "best_val_accuracy",
    "last_epoch_mean_batch_loss",
    "steps_per_epoch",
    "validate_every",
    "wall_time_s",
)
#: Lists of history.json's "validation" table that every reader may draw (all of one length).
VALIDATION_SERIES = ("step", "val_loss", "val_accuracy", "train_accuracy")
#: Arrays of predictions.npz that every reader may use.
PREDICTION_ARRAYS = ("y_true", "y_pred", "proba")


# ------------------------------------------------------------ what each file holds, checked
# Readers call these on what they parsed, so that a damaged or foreign file is one clear error
# naming it, never a TypeError deep inside a report.


def _fail(path: Path, what: str, why: str) -> MlpkitError:
    return MlpkitError(f"{path} is not {what}: {why}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number_list(value: Any) -> bool:
    return isinstance(value, list) and all(_is_number(v) for v in value)


def check_config(config: Any, path: Path) -> dict[str, Any]:
    """``config`` as parsed from config.toml: a table whose sections are tables."""
    if not isinstance(config, dict):
        raise _fail(path, "an mlpkit config", "not a table")
    for key in ("model", "data", "train"):
        if not isinstance(config.get(key, {}), dict):
            raise _fail(path, "an mlpkit config", f"[{key}] must be a table")
    for key in ("name", "description"):
        if not isinstance(config.get(key, ""), str):
            raise _fail(path, "an mlpkit config", f"{key} must be a string")
    return config


def check_history(history: Any, path: Path) -> dict[str, Any]:
    """``history`` as parsed from history.json: per-step losses and the validation series."""
    what = "an mlpkit history"
    if not isinstance(history, dict):
        raise _fail(path, what, "not a JSON object")
    train, validation = history.get("train"), history.get("validation")
    if not isinstance(train, dict) or not _number_list(train.get("loss")):
        raise _fail(path, what, "train.loss must be a list of numbers")
    if "step" in train and (not _number_list(train["step"]) or len(train["step"]) != len(train["loss"])):
        raise _fail(path, what, "train.step must be a list of numbers as long as train.loss")
    if not isinstance(validation, dict):
        raise _fail(path, what, "validation must be a table of lists")
    lengths = set()
    for key, series in validation.items():
        if not _number_list(series):
            raise _fail(path, what, f"validation.{key} must be a list of numbers")
        lengths.add(len(series))
    if missing := [k for k in VALIDATION_SERIES if k not in validation]:
        raise _fail(path, what, f"validation lacks {', '.join(missing)}")
    if len(lengths) > 1:
        raise _fail(path, what, "the validation lists differ in length")
    return history


def check_metrics(metrics: Any, path: Path) -> dict[str, Any]:
    """``metrics`` as parsed from metrics.json: a table whose known entries are numbers or null."""
    what = "an mlpkit metrics file"
    if not isinstance(metrics, dict):
        raise _fail(path, what, "not a JSON object")
    for key in NUMERIC_METRICS:
        if metrics.get(key) is not None and not _is_number(metrics[key]):
            raise _fail(path, what, f"{key} must be a number, got {metrics[key]!r}")
    return metrics


def check_environment(environment: Any, path: Path) -> dict[str, Any]:
    """``environment`` as parsed from environment.json: a table."""
    if not isinstance(environment, dict):
        raise _fail(path, "an mlpkit environment record", "not a JSON object")
    return environment


def check_predictions(arrays: dict[str, np.ndarray], path: Path) -> dict[str, np.ndarray]:
    """The arrays of predictions.npz: labels and predictions (n,) in 0..k-1, probabilities (n, k)."""
    what = "an mlpkit predictions file"
    if missing := [k for k in PREDICTION_ARRAYS if k not in arrays]:
        raise _fail(path, what, f"it lacks {', '.join(missing)}")
    y_true, y_pred, proba = (arrays[k] for k in PREDICTION_ARRAYS)
    if proba.ndim != 2 or proba.dtype.kind != "f" or proba.shape[1] < 1:
        raise _fail(path, what, f"proba must be a 2-D float array, got {proba.dtype} {proba.shape}")
    for name, labels in (("y_true", y_true), ("y_pred", y_pred)):
        if labels.dtype.kind not in "iu" or labels.shape != proba.shape[:1]:
            got = f"{labels.dtype} {labels.shape}"
            raise _fail(path, what, f"{name} must be {proba.shape[0]} integer labels, got {got}")
        if labels.size and not (labels.min() >= 0 and labels.max() < proba.shape[1]):
            raise _fail(path, what, f"{name} must lie in 0..{proba.shape[1] - 1}")
    return arrays
