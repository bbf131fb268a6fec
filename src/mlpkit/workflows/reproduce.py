"""``mlpkit reproduce``: every experiment of the seed report, its comparison figures, and a
summary beside the numbers the report states.

A reproduce folder grows: running again into it keeps every complete run whose config is
unchanged (without training it again), resumes the interrupted ones, and refuses to touch a run
made with another config unless told to replace it (``force``). The summary, the figures and the
seed report are then rebuilt from every run in the folder, whichever invocation made it.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlpkit.core.errors import ConfigError, MlpkitError
from mlpkit.core.fileio import atomic_write_json, atomic_write_text
from mlpkit.data.prepare import PreparedData
from mlpkit.report.format import flat_config, fmt
from mlpkit.report.plots import comparison_figure
from mlpkit.runs.config import Config, load_config, with_overrides
from mlpkit.runs.folder import Run, is_empty, load_run
from mlpkit.runs.lock import RunLock
from mlpkit.seed.checks import COMPARISONS, run_checks
from mlpkit.seed.presets import preset_names as seed_preset_names
from mlpkit.seed.reference import reference_presets
from mlpkit.seed.report import build_seed_report
from mlpkit.seed.summary import reference_entry, summary_markdown
from mlpkit.workflows.configs import resolve_config
from mlpkit.workflows.experiment import check_experiment, run_experiment
from mlpkit.workflows.experiment_data import data_key, experiment_data

#: Settings that change how fast a run computes, not what it computes: a kept run may differ in them.
IGNORED_KEYS = ("train.threads",)
FIGURE_SUFFIXES = (".png", ".svg")


@dataclass
class Planned:
    """What reproduce does with one preset's run folder: ``run`` (new), ``keep`` (complete, same
    config), ``resume`` (interrupted, same config) or ``replace`` (another config, ``force``)."""

    name: str
    config: Config
    run_dir: Path
    action: str
    changed: list[str] = field(default_factory=list)


def config_changes(before: Config, after: Config) -> list[str]:
    """``key: old -> new`` for every setting that differs (the keys in IGNORED_KEYS aside)."""
    old, new = flat_config(before.to_dict()), flat_config(after.to_dict())
    return [
        f"{k}: {fmt(old.get(k))} -> {fmt(new.get(k))}"
        for k in {**old, **new}
        if k not in IGNORED_KEYS and old.get(k) != new.get(k)
    ]


def plan(out: Path, configs: Mapping[str, Config], *, force: bool = False) -> list[Planned]:
    """Decide, before any work, what happens to each preset's folder ``out/<preset>``.

    Raises
    ------
    ConfigError
        Some folders hold runs made with another config (or are not run folders) and ``force``
        is False; the message names each one and what differs.
    """
    planned, refused = [], []
    for name, cfg in configs.items():
        run_dir = out / name
        if not run_dir.is_dir() or is_empty(run_dir):
            planned.append(Planned(name, cfg, run_dir, "run"))
            continue
        try:
            changed = config_changes(load_config(run_dir / "config.toml"), cfg)
        except (ConfigError, MlpkitError, OSError) as exc:
            changed = [f"its config.toml cannot be used ({exc})"]
        if changed:
            planned.append(Planned(name, cfg, run_dir, "replace", changed))
            refused.append(f"{name} ({'; '.join(changed)})")
        else:
            planned.append(Planned(name, cfg, run_dir, "keep" if _complete(run_dir) else "resume"))
    if refused and not force:
        raise ConfigError(
            f"{out} already holds runs made with another config: {', '.join(refused)}. Nothing was "
            "changed; replace them with force=True (--force) or choose another output folder"
        )
    return planned


def _complete(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds committed results that read back (else resuming finishes it)."""
    try:
        load_run(run_dir)
    except MlpkitError:
        return False
    return True


def folder_runs(out: Path) -> dict[str, Run]:
    """Every complete run folder in ``out`` by folder name, the seed report's presets first, in its order."""
    order = reference_presets()
    runs: dict[str, Run] = {}
    for run_dir in sorted(p for p in out.iterdir() if p.is_dir() and (p / "metrics.json").exists()):
        try:
            runs[run_dir.name] = load_run(run_dir)
        except MlpkitError:
            continue
    return dict(sorted(runs.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), kv[0])))


def reproduce_all(
    out: str | Path,
    *,
    presets: list[str] | None = None,
    overrides: list[str] | None = None,
    data_dir: str | Path | None = None,
    threads: int | None = None,
    progress: bool | None = None,
    force: bool = False,
    log: Callable[[str], None] = print,
) -> Path:
    """Run the seed report's experiments and write what compares them with the report.

    Parameters
    ----------
    out : path
        The reproduce folder: one run folder per preset (``out/<preset>``), comparison figures
        in ``out/figures``, ``summary.md``, ``summary.json`` and the seed report ``report.html``.
        An existing folder is added to: see ``force``.
    presets : list of str, optional
        The presets to run (default: every experiment of the seed report).
    overrides : list of str, optional
        ``key=value`` settings applied to every preset (e.g. ``epochs=1``).
    data_dir : path, optional
        Where MNIST is (default: as ``mlpkit train`` finds it).
    threads : int, optional
        BLAS and engine threads for every run.
    progress : bool, optional
        Progress bars (default: only on a terminal).
    force : bool
        Replace (train again) the runs in ``out`` that were made with another config. Without it
        such runs are refused before any work. Complete runs with the same config are kept and
        interrupted ones resumed either way.
    log : callable
        Receives one line of text per event.

    Returns
    -------
    Path
        ``out/summary.md``, which, like summary.json and report.html, covers every complete run
        in ``out``.

    Raises
    ------
    ConfigError
        An unknown preset, a bad override, or (without ``force``) a run in ``out`` made with
        another config; raised before any run starts.
    RunFolderBusyError
        If another process is writing ``out`` (a reproduce holds it for its whole duration).
    """
    out = Path(out)
    names = presets or reference_presets()
    seed_presets = seed_preset_names()  # the report's experiments, not the modern recipes
    unknown = [n for n in names if n not in seed_presets]
    if unknown:
        raise ConfigError(f"unknown preset(s) {', '.join(unknown)}; valid: {', '.join(seed_presets)}")
    extra = list(overrides or []) + ([f"train.threads={threads}"] if threads else [])
    configs = {n: with_overrides(resolve_config(n), extra) for n in names}  # all validated before any work
    plan_and_check(out, configs, force, data_dir)  # a refused reproduce creates nothing, not even the lock
    with RunLock(out):
        todo = plan_and_check(out, configs, force, data_dir)  # again: another writer may have changed it
        return _reproduce(out, configs, todo, extra, data_dir=data_dir, progress=progress, log=log)


def plan_and_check(out: Path, configs: Mapping[str, Config], force: bool, data_dir: str | Path | None) -> list[Planned]:
    """`plan`, then every run that will train is checked (`check_experiment`) before the first starts."""
    todo = (
        plan(out, configs, force=force) if out.exists() else [Planned(n, c, out / n, "run") for n, c in configs.items()]
    )
    for item in todo:
        if item.action != "keep":
            check_experiment(item.config, item.run_dir, data_dir=data_dir, resume=item.action != "run")
    return todo


def _reproduce(
    out: Path,
    configs: Mapping[str, Config],
    todo: list[Planned],
    extra: list[str],
    *,
    data_dir: str | Path | None,
    progress: bool | None,
    log: Callable[[str], None],
) -> Path:
    """The work of `reproduce_all` once the folder is locked and the plan checked."""
    start = time.perf_counter()
    prepared: dict[tuple, PreparedData] = {}

    def data_for(cfg: Config) -> PreparedData:
        key = data_key(cfg)
        if key not in prepared:
            prepared[key] = experiment_data(cfg, data_dir=data_dir)
        return prepared[key]

    for item in todo:
        name, cfg = item.name, item.config
        if item.action == "keep":
            log(f"[{name}] kept: complete, same config ({item.run_dir})")
            continue
        if item.action == "replace":
            log(f"[{name}] replacing the run made with another config ({'; '.join(item.changed)})")
            shutil.rmtree(item.run_dir)
        log(f"[{name}] {cfg.description}" + (f" (with {', '.join(extra)})" if extra else ""))
        result = run_experiment(
            cfg, item.run_dir, data=data_for(cfg), progress=progress, log=log, resume=item.action == "resume"
        )
        m = result.metrics
        log(
            f"[{name}] val acc {m['val_accuracy']:.4f}  val loss {m['val_loss']:.4f}  train loss {m['train_loss']:.4f}"
            f"  early stop {m['early_stop_step']}  {m['wall_time_s']:.1f} s"
        )
        if result.interrupted:
            log("interrupted: stopping the reproduction here")
            break
    first = data_for(next(iter(configs.values())))  # already prepared unless every run was kept
    return write_summary(out, first, todo, time.perf_counter() - start, log=log)


def write_summary(
    out: Path,
    first: PreparedData,
    todo: list[Planned],
    elapsed: float,
    *,
    log: Callable[[str], None],
    seeds: dict[str, Any] | None = None,
) -> Path:
    """summary.json, summary.md, the comparison figures and the seed report of every complete run
    in ``out``; ``first`` gives the data statistics, ``elapsed`` the time of this invocation (kept
    runs add their own), ``seeds`` the statistics over seeds (``reproduce --seeds``) if any."""
    runs = folder_runs(out)
    kept_time = sum(
        runs[i.name].metrics.get("wall_time_s") or 0.0 for i in todo if i.action == "keep" and i.name in runs
    )
    summary = {
        "data": {"mean": first.mean, "std": first.std, "n_train": len(first.y_train), "n_val": len(first.y_val)},
        "wall_time_s": elapsed + kept_time,
        "presets": {n: {"run_dir": n, "metrics": r.metrics, "reference": reference_entry(n)} for n, r in runs.items()},
        "comparisons": _comparison_figures(out, runs),
        "checks": run_checks(runs),
    }
    if seeds is not None:
        summary["seeds"] = seeds
    atomic_write_json(out / "summary.json", summary)
    atomic_write_text(out / "summary.md", summary_markdown(summary))
    log(f"report: {build_seed_report(out, out / 'report.html')}")
    return out / "summary.md"


def _comparison_figures(out: Path, runs: dict[str, Run]) -> list[dict[str, Any]]:
    """The comparison groups' figures in ``out/figures`` (figures of groups now absent are removed)."""
    done, written = [], set()
    for group in COMPARISONS:
        name, title = group.name, group.title
        present = [m for m in group.presets if m in runs]
        if len(present) < 2:
            continue
        series = [(m, runs[m].history, runs[m].metrics) for m in present]
        figures = []
        for kind in ("loss", "accuracy"):
            for path in comparison_figure(series, out / "figures" / f"{name}-{kind}", kind=kind, title=title):
                figures.append(str(path.relative_to(out)))
                written.add(path.name)
        done.append({"name": name, "title": title, "presets": present, "figures": figures})
    for stale in (out / "figures").glob("*"):
        if stale.suffix in FIGURE_SUFFIXES and stale.name not in written:
            stale.unlink()
    return done
