"""The files of a run folder: their names and what each holds, in one place.

Writers (``mlpkit.workflows.experiment``) and readers (`mlpkit.runs.folder`, the reports)
name the files only through these constants. A run folder is enough to report on (plots and
HTML are made from it, never from live objects) and, with its checkpoints, enough to resume.
"""

from __future__ import annotations

__all__ = [
    "CHECKPOINTS",
    "CHECKPOINT_GLOB",
    "CONFIG",
    "DIVERGED",
    "ENVIRONMENT",
    "FIGURES",
    "FILES",
    "HISTORY",
    "METRICS",
    "METRICS_PARTIAL",
    "PREDICTIONS",
    "REQUIRED",
    "TEMPORARY_GLOB",
    "WEIGHTS",
    "WEIGHTS_FORMAT",
]

CONFIG = "config.toml"
ENVIRONMENT = "environment.json"
HISTORY = "history.json"
METRICS = "metrics.json"
METRICS_PARTIAL = "metrics.partial.json"
DIVERGED = "diverged.json"
WEIGHTS = "weights.npz"
PREDICTIONS = "predictions.npz"
FIGURES = "figures"
CHECKPOINTS = "checkpoints"
#: Checkpoint files inside CHECKPOINTS (``step-000001875.npz``, named by ``train.callbacks.Checkpointer``).
CHECKPOINT_GLOB = "step-*.npz"
#: Temporary files of atomic writes (``core.fileio``) that a killed process may leave behind.
TEMPORARY_GLOB = ".*.tmp"
#: The ``format`` recorded in a weights file's metadata.
WEIGHTS_FORMAT = "mlpkit-weights"

#: Name -> what it holds.
FILES: dict[str, str] = {
    CONFIG: "the resolved configuration (mlpkit train RUN/config.toml reruns it; --resume reads it)",
    ENVIRONMENT: "seed, versions, BLAS and thread count, machine",
    HISTORY: "training loss per step; validation metrics per check",
    METRICS: "final metrics of a finished run (losses, accuracies, steps, normalization, engine)",
    METRICS_PARTIAL: "the same metrics for a run stopped by Ctrl-C (resumable)",
    DIVERGED: "where and why training diverged, and the last good checkpoint",
    WEIGHTS: "parameters by name plus __meta__: architecture, dtype and normalization (plain arrays, no pickle)",
    PREDICTIONS: "validation labels, predictions, probabilities, the most confident mistakes' images",
    FIGURES: "loss and accuracy against the gradient step (PNG and SVG)",
    CHECKPOINTS: "the newest checkpoints (mlpkit.train.checkpoint format)",
}
#: What a finished run folder must hold to be read back (`mlpkit.runs.folder.load_run`).
REQUIRED = (CONFIG, HISTORY, METRICS)
