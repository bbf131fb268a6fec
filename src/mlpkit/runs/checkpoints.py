"""The checkpoints of a run folder: which exist, the newest one a resume can use, the newest good one.

A resume trusts nothing it reads: each candidate, newest first, must be a readable file and
pass the caller's check (its recorded config, its training state); one that fails is renamed
``*.corrupt`` (kept for inspection, never picked again) and the one before it is tried.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mlpkit.core.errors import CheckpointError
from mlpkit.runs import schema
from mlpkit.train.checkpoint import load_checkpoint

__all__ = [
    "CORRUPT_SUFFIX",
    "RUN_CONFIG_KEY",
    "checkpoint_files",
    "corrupt_checkpoint_files",
    "last_good_checkpoint",
    "latest_checkpoint",
    "recorded_config",
]

#: Where a run's checkpoints record the config they were made with (``Config.to_dict()``).
RUN_CONFIG_KEY = "run_config"
#: Appended to the name of a checkpoint a resume found unusable.
CORRUPT_SUFFIX = ".corrupt"


def checkpoint_files(run_dir: Path) -> list[Path]:
    """The checkpoint files in ``run_dir``, oldest first (their names sort by step)."""
    return sorted((run_dir / schema.CHECKPOINTS).glob(schema.CHECKPOINT_GLOB))


def corrupt_checkpoint_files(run_dir: Path) -> list[Path]:
    """The checkpoints an earlier resume set aside as unusable, oldest first."""
    return sorted((run_dir / schema.CHECKPOINTS).glob(schema.CHECKPOINT_GLOB + CORRUPT_SUFFIX))


def recorded_config(state: Mapping[str, Any], source: str) -> Mapping[str, Any]:
    """The config a checkpoint's ``state`` was made with; CheckpointError if it records none."""
    found = state.get(RUN_CONFIG_KEY)
    if not isinstance(found, Mapping):
        raise CheckpointError(
            f"checkpoint {source} records no run config ({RUN_CONFIG_KEY}): it was not written"
            " by this version of mlpkit, or was edited"
        )
    return found


def latest_checkpoint(
    run_dir: Path, use: Callable[[dict[str, Any], Path], None] | None = None
) -> tuple[dict[str, Any], Path, list[str]]:
    """The newest checkpoint that can be read and used; each newer one is skipped with a warning.

    A skipped file is renamed ``*.corrupt`` (kept for inspection, never picked again and never
    counted among the newest checkpoints that are kept).

    Parameters
    ----------
    run_dir : Path
        The run folder.
    use : callable, optional
        ``use(state, path)`` checks (and may load) a readable checkpoint: a CheckpointError from
        it means the file is unusable (skipped like an unreadable one); any other exception
        (e.g. a ConfigError: the run's config changed) stops the search, renaming nothing.

    Returns
    -------
    (dict, Path, list of str)
        The checkpoint's state, its file, and one warning per skipped file.

    Raises
    ------
    CheckpointError
        If the folder has no checkpoints, or none of them is usable.
    """
    warnings: list[str] = []
    candidates = checkpoint_files(run_dir)[::-1]
    if not candidates:
        raise CheckpointError(f"{run_dir} has no checkpoints to resume from")
    for path in candidates:
        what = "unreadable"
        try:
            state = load_checkpoint(path)
            what = "unusable"
            if use is not None:
                use(state, path)
            return state, path, warnings
        except CheckpointError as exc:
            path.replace(path.with_name(path.name + CORRUPT_SUFFIX))
            warnings.append(f"warning: skipping {what} checkpoint (renamed to {path.name}{CORRUPT_SUFFIX}): {exc}")
    raise CheckpointError(
        f"every checkpoint in {run_dir / schema.CHECKPOINTS} is unreadable or unusable: " + "; ".join(warnings)
    )


def last_good_checkpoint(run_dir: Path) -> Path | None:
    """The newest checkpoint that reads back with finite weights and velocities, if any.

    What a divergence message may call "the last good checkpoint": a file that merely exists
    (or holds NaN weights) is not one.
    """
    for path in checkpoint_files(run_dir)[::-1]:
        try:
            state = load_checkpoint(path)
            arrays = [*state["model"].values(), *state["optimizer"].values()]
            if all(
                isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.floating) and np.isfinite(a).all()
                for a in arrays
            ):
                return path
        except (CheckpointError, KeyError, TypeError, AttributeError):
            continue
    return None
