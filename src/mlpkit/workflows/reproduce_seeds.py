"""``mlpkit reproduce --seeds N``: every preset with N seeds, run through the sweep executor
(Dask), then the usual summary and seed report with mean +- std over seeds beside the single
numbers, and whether the report's conclusions are significant across seeds.

Seed ``s0`` (the preset's own) is the usual run folder ``DIR/<preset>``, so a folder made by
``reproduce --seeds`` holds exactly what ``reproduce`` makes, and more; the other seeds live in
``DIR/seeds/<preset>/seed=<s>`` (`mlpkit.seed.seed_stats`). The folder grows and resumes like
``reproduce``'s: complete runs with the same config are kept, interrupted ones resumed.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from mlpkit.core.errors import ConfigError, MlpkitError
from mlpkit.runs.config import Config, to_toml, with_overrides
from mlpkit.runs.lock import RunLock
from mlpkit.seed.presets import preset_names as seed_preset_names
from mlpkit.seed.reference import reference_presets
from mlpkit.seed.seed_stats import seed_folder, seed_runs, seed_statistics, significance
from mlpkit.workflows.configs import resolve_config
from mlpkit.workflows.experiment_data import experiment_data
from mlpkit.workflows.reproduce import Planned, plan_and_check, write_summary
from mlpkit.workflows.sweep.executor import TrialTask, execute_on_cluster
from mlpkit.workflows.sweep.progress import SweepProgress


def seed_configs(configs: dict[str, Config], seeds: int) -> dict[str, Config]:
    """Every (preset, seed) run by its folder relative to the reproduce folder."""
    runs: dict[str, Config] = {}
    for name, cfg in configs.items():
        for k in range(seeds):
            seed = cfg.seed + k
            folder = seed_folder(Path(), name, seed, cfg.seed)
            runs[folder.as_posix()] = cfg if k == 0 else with_overrides(cfg, [f"seed={seed}"])
    return runs


def reproduce_seeds(
    out: str | Path,
    *,
    seeds: int,
    presets: list[str] | None = None,
    overrides: list[str] | None = None,
    data_dir: str | Path | None = None,
    threads: int | None = None,
    progress: bool | None = None,
    force: bool = False,
    scheduler: str | None = None,
    workers: int | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """Run every preset with ``seeds`` seeds on Dask and write the summary with seed statistics.

    Parameters
    ----------
    out : path
        The reproduce folder (see `mlpkit.workflows.reproduce.reproduce_all`).
    seeds : int
        Seeds per preset: the preset's own seed and the next ``seeds - 1``.
    presets, overrides, data_dir, threads, force
        As for `reproduce_all`.
    progress : bool or None
        One progress bar over all runs (None: only on a terminal).
    scheduler : str or None
        A Dask scheduler's address; None: a LocalCluster on 127.0.0.1.
    workers : int or None
        LocalCluster worker processes (default: one per core).
    log : callable
        Receives one line per event.

    Returns
    -------
    Path
        ``out/summary.md``.

    Raises
    ------
    ConfigError
        An unknown preset, a bad override, ``seeds`` < 1, or (without ``force``) a run in ``out``
        made with another config; raised before any run starts.
    MlpkitError
        If some runs failed (the others are kept; the same command retries them).
    """
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    out = Path(out)
    names = presets or reference_presets()
    unknown = [n for n in names if n not in seed_preset_names()]
    if unknown:
        raise ConfigError(f"unknown preset(s) {', '.join(unknown)}; valid: {', '.join(seed_preset_names())}")
    extra = list(overrides or []) + ([f"train.threads={threads}"] if threads else [])
    base = {n: with_overrides(resolve_config(n), extra) for n in names}
    configs = seed_configs(base, seeds)
    plan_and_check(out, configs, force, data_dir)
    with RunLock(out):
        todo = plan_and_check(out, configs, force, data_dir)
        start = time.perf_counter()
        failed = _run(out, todo, data_dir, progress, scheduler, workers, log)
        stats = seed_statistics(seed_runs(out, names))
        block = {"n": seeds, "presets": stats, "significance": significance(stats)}
        first = experiment_data(next(iter(base.values())), data_dir=data_dir)
        summary = write_summary(out, first, todo, time.perf_counter() - start, log=log, seeds=block)
    if failed:
        raise MlpkitError(f"{len(failed)} runs failed ({', '.join(failed)}); the same command retries them")
    return summary


def _run(
    out: Path,
    todo: list[Planned],
    data_dir: str | Path | None,
    progress: bool | None,
    scheduler: str | None,
    workers: int | None,
    log: Callable[[str], None],
) -> list[str]:
    """Run the planned runs that are not kept on Dask; the names of those that failed."""
    tasks = []
    for item in todo:
        if item.action == "keep":
            continue
        if item.action == "replace":
            log(f"[{item.name}] replacing the run made with another config ({'; '.join(item.changed)})")
            shutil.rmtree(item.run_dir)
        tasks.append(TrialTask(item.name, to_toml(item.config), str(item.run_dir.resolve())))
    log(f"{len(todo)} runs: {len(todo) - len(tasks)} kept, {len(tasks)} to run")
    failed: list[str] = []
    if not tasks:
        return failed
    bar = SweepProgress(len(todo), done=len(todo) - len(tasks), enabled=progress)

    def on_done(name: str, result: dict | None, error: BaseException | None) -> None:
        if error is None and result is not None and result.get("status") == "failed":
            error = MlpkitError(result.get("error", "failed"))
        if error is not None:
            failed.append(name)
            bar.write(f"[{name}] failed: {type(error).__name__}: {error}".splitlines()[0])
        bar.finished(failed=error is not None)

    execute_on_cluster(
        tasks, on_done, bar, scheduler=scheduler, workers=workers, data_dir=data_dir, log=log, heading="running"
    )
    return failed
