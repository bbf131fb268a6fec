"""Running trials on Dask distributed: a LocalCluster on this machine, or an existing cluster.

Why Dask rather than a process pool of our own: it already has workers on many machines, a
scheduler that notices a dead worker and gives its task to another (up to the scheduler's
``allowed-failures``), task retries, and deployers for HPC queues and Kubernetes. What it
lacks, continuing a killed trial rather than restarting it, comes from the task itself
(`mlpkit.workflows.sweep.task`). Dask is imported inside the functions, so importing mlpkit
or its command line does not import it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlpkit.core.errors import ConfigError

if TYPE_CHECKING:
    from distributed import Client

    from mlpkit.workflows.sweep.progress import SweepProgress

#: Resubmissions of a task that raised (a worker that died is rescheduled by the scheduler itself).
RETRIES = 2
CONNECT_TIMEOUT_S = 30


@dataclass(frozen=True)
class TrialTask:
    """One trial as the worker gets it: plain values only."""

    name: str
    config_toml: str
    run_dir: str


def default_workers() -> int:
    """One worker per core this process may run on (its CPU affinity, e.g. under ``taskset``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None) -> Iterator[Client]:
    """A Dask client, closed (with the cluster it started) however the block ends.

    Parameters
    ----------
    scheduler : str or None
        Address of a running scheduler (``tcp://host:port``); None starts a LocalCluster on
        127.0.0.1: ``workers`` processes of one thread each, no dashboard.
    workers : int or None
        LocalCluster workers (default: one per core). Ignored with ``scheduler``.

    Raises
    ------
    ConfigError
        If the scheduler cannot be reached.
    """
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            raise ConfigError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        try:
            yield client
        finally:
            client.close()
        return
    cluster = LocalCluster(
        n_workers=workers or default_workers(),
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    try:
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


def describe(client: Client) -> str:
    """``N workers at ADDRESS`` for the log."""
    n = len(client.scheduler_info().get("workers", {}))
    return f"{n} Dask worker{'s' if n != 1 else ''} (scheduler {client.scheduler.address})"


def execute(
    client: Client,
    tasks: Sequence[TrialTask],
    on_done: Callable[[str, dict[str, Any] | None, BaseException | None], None],
    *,
    data_dir: str | None = None,
    retries: int = RETRIES,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Submit every task and call ``on_done(name, result, error)`` as each one ends, in the order
    they end. On any exception here (Ctrl-C of the driver included) the tasks still queued or
    running are cancelled before it propagates.

    Parameters
    ----------
    client : distributed.Client
        Where to run.
    tasks : sequence of TrialTask
        The trials to run.
    on_done : callable
        Gets the trial's name and either the task's result or the exception that ended it
        (after ``retries``; a task whose workers kept dying ends with ``KilledWorker``).
    data_dir : str or None
        Passed to every task (where MNIST is on the workers).
    retries : int
        How often a task that raised is tried again.
    progress : callable or None
        Gets (tasks still pending, worker threads) after each task ends and at the start.
    """
    from distributed import as_completed

    from mlpkit.workflows.sweep.task import run_trial

    run = uuid.uuid4().hex[:8]
    futures = {
        client.submit(
            run_trial,
            t.name,
            t.config_toml,
            t.run_dir,
            data_dir,
            key=f"mlpkit-trial-{t.name}-{run}",
            retries=retries,
            pure=False,
        ): t.name
        for t in tasks
    }
    pending = len(futures)

    def report() -> None:
        if progress is not None:
            progress(pending, sum(client.nthreads().values()))

    try:
        report()
        for future in as_completed(futures):
            pending -= 1
            name = futures[future]
            if future.status == "finished":
                on_done(name, future.result(), None)
                continue
            try:
                error = future.exception()
            except Exception as exc:  # a cancelled future raises its reason instead
                error = exc
            on_done(name, None, error)
            report()
    except BaseException:
        with contextlib.suppress(Exception):
            client.cancel(list(futures), force=True)
        raise


def execute_on_cluster(
    tasks: Sequence[TrialTask],
    on_done: Callable[[str, dict[str, Any] | None, BaseException | None], None],
    bar: SweepProgress,
    *,
    scheduler: str | None,
    workers: int | None,
    data_dir: str | Path | None,
    log: Callable[[str], None],
    heading: str,
) -> None:
    """`execute` on the cluster of `dask_client` (logged as ``"<heading> on <cluster>"``),
    ``data_dir`` resolved as the workers must see it; ``bar`` is closed however it ends."""
    try:
        with dask_client(scheduler, workers) as client:
            log(f"{heading} on {describe(client)}")
            execute(
                client,
                tasks,
                on_done,
                data_dir=None if data_dir is None else str(Path(data_dir).resolve()),
                progress=bar.running,
            )
    finally:
        bar.close()
