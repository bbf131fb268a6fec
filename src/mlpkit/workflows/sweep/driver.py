"""``mlpkit sweep``: plan the trials, run the unfinished ones on Dask, keep the results current.

A sweep folder holds ``sweep.json`` (the spec and every trial's config, what a rerun compares),
``trials/<name>/`` (one ordinary run folder per trial), ``results.csv``/``results.json`` and
``report.html``. Running the same command again keeps the finished trials (their rows are read
from their folders) and resumes the others from their checkpoints; a folder made by another
spec is refused. The driver holds the sweep folder's lock: one driver per sweep.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlpkit.core.errors import ConfigError, MlpkitError
from mlpkit.core.fileio import atomic_write_json
from mlpkit.runs.folder import is_empty
from mlpkit.runs.lock import LOCK_NAME, RunLock
from mlpkit.workflows.experiment import check_experiment
from mlpkit.workflows.experiment_data import data_key
from mlpkit.workflows.sweep.executor import TrialTask, execute_on_cluster
from mlpkit.workflows.sweep.progress import SweepProgress
from mlpkit.workflows.sweep.results import finished_row, read_results, trial_row, write_results
from mlpkit.workflows.sweep.spec import SweepSpec, load_spec
from mlpkit.workflows.sweep.task import trial_complete
from mlpkit.workflows.sweep.trials import Trial, expand, trial_record

SWEEP_FILE = "sweep.json"
TRIALS = "trials"
REPORT = "report.html"


@dataclass
class SweepResult:
    """What `run_sweep` returns: the folder, one row per trial (see `results`), the names of the
    failed trials and the report (None if it could not be built)."""

    out: Path
    rows: list[dict[str, Any]]
    failed: list[str]
    report: Path | None


def plan_sweep(spec_path: str | Path) -> tuple[SweepSpec, list[Trial]]:
    """The spec and every trial's validated config; nothing is written.

    Raises
    ------
    ConfigError
        For any mistake in the spec or any trial's config (one line each).
    """
    spec = load_spec(spec_path)
    preset = Path(spec_path).parent / spec.preset
    if spec.preset.endswith(".toml") and not Path(spec.preset).is_absolute() and preset.is_file():
        spec = dataclasses.replace(spec, preset=str(preset.resolve()))  # relative to the spec file
    return spec, expand(spec)


def _record(spec: SweepSpec, trials: list[Trial]) -> dict[str, Any]:
    return {"spec": spec.to_dict(), "trials": [trial_record(t) for t in trials]}


def check_sweep_folder(out: Path, record: dict[str, Any]) -> None:
    """Refuse a folder that is not empty and not a sweep of the same spec (nothing is changed).

    Raises
    ------
    ConfigError
        Naming what differs, or saying the folder is not a sweep folder.
    """
    if out.exists() and not out.is_dir():
        raise ConfigError(f"sweep folder {out} is a file; choose another --out")
    path = out / SWEEP_FILE
    if not path.exists():
        if not is_empty(out) and any(p.name not in (LOCK_NAME, TRIALS) for p in out.iterdir()):
            raise ConfigError(f"{out} is not empty and holds no {SWEEP_FILE}: not a sweep folder; choose another --out")
        return
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} is unreadable ({exc}); choose another --out") from None
    old, new = saved.get("spec", {}), record["spec"]
    differs = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if not differs and saved.get("trials") != record["trials"]:
        differs = ["the trials' configs (the preset changed?)"]
    if differs:
        raise ConfigError(
            f"{out} holds a sweep of another spec (it differs in {', '.join(differs)}); rerun with the same"
            " spec to continue it, or choose another --out"
        )


def run_sweep(
    spec_path: str | Path,
    out: str | Path,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    data_dir: str | Path | None = None,
    progress: bool | None = None,
    log: Callable[[str], None] = print,
) -> SweepResult:
    """Run (or continue) the sweep of ``spec_path`` in ``out``.

    Parameters
    ----------
    spec_path : path
        The sweep file (see `mlpkit.workflows.sweep.spec`).
    out : path
        The sweep folder; rerunning into it continues the sweep.
    scheduler : str or None
        A Dask scheduler's address (``tcp://host:port``); None: a LocalCluster on 127.0.0.1.
    workers : int or None
        LocalCluster worker processes (default: one per core).
    data_dir : path or None
        Where MNIST is, as every worker sees it (default: their ``MLPKIT_DATA`` or cache).
    progress : bool or None
        One progress bar for the sweep (None: only on a terminal).
    log : callable
        Receives one line per event.

    Returns
    -------
    SweepResult

    Raises
    ------
    ConfigError
        A mistake in the spec or a trial's config, or ``out`` holding another sweep; raised before
        anything is submitted or written.
    RunFolderBusyError
        If another driver runs this sweep.
    KeyboardInterrupt
        On Ctrl-C: the cluster is closed; what finished is kept, the same command continues.
    """
    out = Path(out)
    spec, trials = plan_sweep(spec_path)
    seen: set[tuple] = set()
    for t in trials:  # data found, memory enough: one check per distinct data set
        if data_key(t.config) not in seen:
            seen.add(data_key(t.config))
            check_experiment(t.config, out / TRIALS / t.name, data_dir=data_dir, resume=True)
    record = _record(spec, trials)
    check_sweep_folder(out, record)  # refused: nothing created
    with RunLock(out):
        check_sweep_folder(out, record)
        if not (out / SWEEP_FILE).exists():
            atomic_write_json(out / SWEEP_FILE, record)
        return _run(out, spec, trials, scheduler, workers, data_dir, progress, log)


def _run(
    out: Path,
    spec: SweepSpec,
    trials: list[Trial],
    scheduler: str | None,
    workers: int | None,
    data_dir: str | Path | None,
    progress: bool | None,
    log: Callable[[str], None],
) -> SweepResult:
    by_name = {t.name: t for t in trials}
    earlier = {r.get("trial"): r for r in read_results(out).get("rows", [])}
    rows = {t.name: trial_row(t, None, status="pending") for t in trials}
    todo = []
    for t in trials:
        run_dir = out / TRIALS / t.name
        if trial_complete(run_dir):
            before = earlier.get(t.name, {})
            how = str(before.get("how") or "kept")
            rows[t.name] = finished_row(t, run_dir, worker=str(before.get("worker", "")), how=how)
        else:
            todo.append(t)
    swept = spec.swept
    write_results(out, list(rows.values()), swept=swept)
    log(
        f"sweep: {len(trials)} trials in {out}"
        + (f", {len(trials) - len(todo)} already done" if len(todo) < len(trials) else "")
    )
    failed: list[str] = []
    if todo:
        bar = SweepProgress(len(trials), done=len(trials) - len(todo), enabled=progress)

        def on_done(name: str, result: dict[str, Any] | None, error: BaseException | None) -> None:
            trial = by_name[name]
            if result is not None and result.get("status") == "failed":
                error = MlpkitError(result.get("error", "failed"))
            if error is None and result is not None:
                try:
                    rows[name] = finished_row(
                        trial, out / TRIALS / name, worker=result.get("worker", ""), how=result.get("status", "")
                    )
                except MlpkitError as exc:  # the worker said done, the folder disagrees
                    error = exc
            if error is not None:
                failed.append(name)
                why = (str(error) if type(error) is MlpkitError else f"{type(error).__name__}: {error}").splitlines()[0]
                rows[name] = trial_row(trial, None, status="failed", error=why)
                bar.write(f"trial {name} failed: {why}")
            bar.finished(failed=error is not None)
            write_results(out, list(rows.values()), swept=swept)

        tasks = [TrialTask(t.name, trial_record(t)["config"], str((out / TRIALS / t.name).resolve())) for t in todo]
        execute_on_cluster(
            tasks,
            on_done,
            bar,
            scheduler=scheduler,
            workers=workers,
            data_dir=data_dir,
            log=log,
            heading=f"running {len(todo)} trials",
        )
    report = _report(out, log)
    if failed:
        log(f"{len(failed)} of {len(trials)} trials failed: {', '.join(failed)}; rerun the same command to retry them")
    return SweepResult(out=out, rows=list(rows.values()), failed=failed, report=report)


def _report(out: Path, log: Callable[[str], None]) -> Path | None:
    from mlpkit.report.sweep_report import build_sweep_report

    try:
        path = build_sweep_report(out, out / REPORT)
    except MlpkitError as exc:
        log(f"report not written: {exc}")
        return None
    log(f"report: {path}")
    return path
