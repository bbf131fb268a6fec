"""A run's results are committed as one unit, so a finished-looking folder is really finished.

A run writes its results in this order: it withdraws the previous marker (``metrics.json`` and
``metrics.partial.json``), writes history, weights, predictions and figures, and writes the
metrics file LAST with the SHA-256 of every file of `schema.COMMITTED` inside it. Each file is
written atomically, so a process killed anywhere leaves either the old complete unit, or a
folder without a marker (incomplete: ``mlpkit train --resume`` finishes it), never a marker
beside results of another step. Readers (`mlpkit.runs.folder.load_run`) check the marker and
the checksums with `mismatches`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from mlpkit.core.errors import MlpkitError
from mlpkit.core.fileio import atomic_write_json, fsync_dir
from mlpkit.runs import schema

__all__ = [
    "IncompleteRunError",
    "commit_results",
    "file_checksum",
    "incomplete_message",
    "interrupted_message",
    "mismatches",
    "withdraw_results",
]

_CHUNK = 1 << 20


class IncompleteRunError(MlpkitError):
    """A run folder has no completion marker, or its results disagree with it: it was stopped
    (Ctrl-C, a kill, a full disk) before its results were committed."""


def file_checksum(path: Path) -> str:
    """The SHA-256 of the file at ``path``, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def withdraw_results(run_dir: Path) -> None:
    """Remove the completion marker (``metrics.json``, ``metrics.partial.json``): from here on the
    folder reads as incomplete until `commit_results` runs. The first step of writing results."""
    for name in (schema.METRICS, schema.METRICS_PARTIAL):
        (run_dir / name).unlink(missing_ok=True)
    fsync_dir(run_dir)


def commit_results(run_dir: Path, metrics: dict[str, Any], *, interrupted: bool) -> Path:
    """Write the metrics file with the checksums of the result files present: the last write of a run.

    Parameters
    ----------
    run_dir : Path
        The run folder, its result files (`schema.COMMITTED`) written already.
    metrics : dict
        The final metrics; the checksums are added under `schema.CHECKSUMS` in the file only.
    interrupted : bool
        Write ``metrics.partial.json`` (a run stopped by Ctrl-C) instead of ``metrics.json``.

    Returns
    -------
    Path
        The metrics file written.

    Raises
    ------
    RunIOError
        If it cannot be written (the folder then stays incomplete, and resumable).
    """
    sums = {name: file_checksum(run_dir / name) for name in schema.COMMITTED if (run_dir / name).exists()}
    target = run_dir / (schema.METRICS_PARTIAL if interrupted else schema.METRICS)
    return atomic_write_json(target, {**metrics, schema.CHECKSUMS: sums})


def mismatches(run_dir: Path, metrics: dict[str, Any]) -> list[tuple[str, str]]:
    """``(file name, what is wrong)`` for each result file that disagrees with the marker in
    ``metrics``; empty when the folder's results are the committed unit. History must be listed."""
    sums = metrics.get(schema.CHECKSUMS)
    if not isinstance(sums, dict) or schema.HISTORY not in sums:
        return [(schema.METRICS, f"records no checksums of the results (no {schema.CHECKSUMS!r} entry)")]
    found = []
    for name in schema.COMMITTED:
        if name not in sums:
            continue
        path = run_dir / name
        if not path.is_file():
            found.append((name, "missing"))
        elif not isinstance(sums[name], str) or file_checksum(path) != sums[name]:
            found.append((name, f"does not match the checksum in {schema.METRICS}"))
    return found


def incomplete_message(run_dir: Path, why: str | None = None) -> str:
    """The one-line message for a run folder without a valid marker, saying how to finish it.

    Parameters
    ----------
    run_dir : Path
        The run folder (it holds ``config.toml``).
    why : str or None
        What was found wrong (a file that disagrees with the marker); None: the marker is missing.
    """
    hint = f"finish it with: mlpkit train --resume {run_dir}"
    if (run_dir / schema.DIVERGED).exists():
        diverged = run_dir / schema.DIVERGED
        return f"run folder {run_dir} diverged during training (see {diverged}); it has no final results"
    if why is None:
        if (run_dir / schema.METRICS_PARTIAL).exists():
            return f"run folder {run_dir} was stopped by Ctrl-C before it finished; {hint}"
        if not any((run_dir / name).exists() for name in schema.COMMITTED):
            return f"run folder {run_dir} is incomplete (stopped before it wrote its results); {hint}"
        why = f"missing {schema.METRICS}"
    return f"run folder {run_dir} is incomplete (interrupted while writing its results: {why}); {hint}"


def interrupted_message(run_dir: Path | None) -> str:
    """What a Ctrl-C outside the training loop left in ``run_dir``, and what to do next."""
    from mlpkit.runs.checkpoints import checkpoint_files

    if run_dir is None or not run_dir.is_dir():
        return "interrupted"
    if (run_dir / schema.METRICS).exists():
        return f"interrupted after the run was written; {run_dir} is complete"
    if checkpoint_files(run_dir):
        return f"interrupted; resume with: mlpkit train --resume {run_dir}"
    return "interrupted"
