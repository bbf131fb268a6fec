"""What a worker does with one trial: run it as an ordinary run folder, or resume it, or keep it.

The task is idempotent, which is what makes a sweep fault tolerant: whatever state a killed
worker left in the trial folder (nothing, a config, some checkpoints, finished results), running
the task again finishes the trial with the same numbers as an undisturbed run, because resuming
from a checkpoint is bit-identical (`mlpkit.workflows.experiment`). Two workers never write one
folder: `run_experiment` holds its flock, which the kernel drops when a holder dies, so a task
that finds the folder held waits for the live holder (a retry of the same trial) and never
writes beside it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mlpkit.core.errors import MlpkitError
from mlpkit.data.prepare import PreparedData
from mlpkit.runs.config import Config, parse_config
from mlpkit.runs.folder import is_empty, load_run
from mlpkit.runs.lock import RunFolderBusyError
from mlpkit.workflows.experiment import run_experiment
from mlpkit.workflows.experiment_data import data_key, experiment_data

#: How long a task waits for a live process that holds its trial's folder.
LOCK_WAIT_S = 600.0
LOCK_POLL_S = 0.5

_PREPARED: dict[tuple, PreparedData] = {}  # the last data set this worker prepared, for the next trial


def trial_complete(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds committed results of a run that was not interrupted."""
    try:
        run = load_run(run_dir)
    except MlpkitError:
        return False
    return not run.metrics.get("interrupted")


def worker_address() -> str:
    """The address of the Dask worker running this task, or ``local`` outside one."""
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return "local"


def _data(cfg: Config, data_dir: str | Path | None) -> PreparedData:
    key = data_key(cfg)
    if key not in _PREPARED:
        _PREPARED.clear()  # one data set at a time: a worker's memory is the run's, not a cache's
        _PREPARED[key] = experiment_data(cfg, data_dir=data_dir)
    return _PREPARED[key]


def _quiet(line: str) -> None:
    """Workers print nothing per trial: the driver's bar and results files say what happened."""


def run_once(cfg: Config, run_dir: Path, data_dir: str | Path | None) -> str:
    """Bring ``run_dir`` to a finished run of ``cfg``: ``kept``, ``ran`` or ``resumed``."""
    if trial_complete(run_dir):
        return "kept"
    resume = not is_empty(run_dir)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):  # one core per worker: BLAS on one thread
        result = run_experiment(cfg, run_dir, data=_data(cfg, data_dir), progress=False, resume=resume, log=_quiet)
    if result.interrupted:
        raise MlpkitError(f"trial {run_dir.name} was interrupted")
    return "resumed" if resume else "ran"


def run_trial(
    name: str,
    config_toml: str,
    run_dir: str,
    data_dir: str | None = None,
    lock_wait_s: float = LOCK_WAIT_S,
) -> dict[str, Any]:
    """The Dask task of one trial (plain arguments, so any worker can take it).

    Parameters
    ----------
    name : str
        The trial's name.
    config_toml : str
        Its config as TOML text.
    run_dir : str
        Its run folder, on a filesystem the driver and every worker see.
    data_dir : str or None
        Where MNIST is, as the worker sees it (None: the worker's ``MLPKIT_DATA`` or cache).
    lock_wait_s : float
        How long to wait for another live process that holds the folder.

    Returns
    -------
    dict
        ``{"name", "status", "error", "worker", "task_time_s"}``: status ``ran``, ``resumed``,
        ``kept`` or ``failed`` (an MlpkitError of the trial itself, e.g. a divergence, named in
        ``error``: it is not retried, since it would fail again); the metrics are read from the
        folder.

    Raises
    ------
    RunFolderBusyError
        If another live process still holds the folder after ``lock_wait_s``. Other exceptions
        (an OSError, say) propagate, and Dask retries the task.
    """
    cfg = parse_config(config_toml, source=f"trial {name}")
    path = Path(run_dir)
    start = time.monotonic()
    error = ""
    while True:
        try:
            status = run_once(cfg, path, data_dir)
            break
        except RunFolderBusyError:
            if time.monotonic() - start > lock_wait_s:
                raise
            time.sleep(LOCK_POLL_S)
        except MlpkitError as exc:  # the trial's own failure (a divergence, bad data): retrying gives it again
            status, error = "failed", f"{type(exc).__name__}: {exc}".splitlines()[0]
            break
    return {
        "name": name,
        "status": status,
        "error": error,
        "worker": worker_address(),
        "task_time_s": time.monotonic() - start,
    }
