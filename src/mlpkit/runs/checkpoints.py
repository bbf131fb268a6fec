"""The checkpoints of a run folder: which exist, and the newest one that can be read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlpkit.core.errors import CheckpointError
from mlpkit.runs import schema
from mlpkit.train.checkpoint import load_checkpoint

__all__ = ["checkpoint_files", "latest_checkpoint"]


def checkpoint_files(run_dir: Path) -> list[Path]:
    """The checkpoint files in ``run_dir``, oldest first (their names sort by step)."""
    return sorted((run_dir / schema.CHECKPOINTS).glob(schema.CHECKPOINT_GLOB))


def latest_checkpoint(run_dir: Path) -> tuple[dict[str, Any], Path, list[str]]:
    """The newest readable checkpoint; a corrupt newer one is skipped with a warning.

    A skipped file is renamed ``*.corrupt`` (kept for inspection, never picked again and never
    counted among the newest checkpoints that are kept).

    Parameters
    ----------
    run_dir : Path
        The run folder.

    Returns
    -------
    (dict, Path, list of str)
        The checkpoint's state, its file, and one warning per skipped file.

    Raises
    ------
    CheckpointError
        If the folder has no checkpoint, or none of them is readable.
    """
    warnings: list[str] = []
    candidates = checkpoint_files(run_dir)[::-1]
    if not candidates:
        raise CheckpointError(f"{run_dir} has no checkpoints to resume from")
    for path in candidates:
        try:
            return load_checkpoint(path), path, warnings
        except CheckpointError as exc:
            path.replace(path.with_name(path.name + ".corrupt"))
            warnings.append(f"warning: skipping unreadable checkpoint (renamed to {path.name}.corrupt): {exc}")
    raise CheckpointError(f"every checkpoint in {run_dir / schema.CHECKPOINTS} is unreadable: " + "; ".join(warnings))
