"""The seed-report page that ``mlpkit reproduce`` writes: it follows the seed report task by
task (``tasks.toml``) with our figure, our numbers, the report's (``reference.toml``) and a
generated sentence on how they compare. Built from :mod:`mlpkit.report`'s generic pieces
(page skeleton, tables, curves) and this package's template ``seed_report.html.j2``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlpkit.core.errors import MlpkitError
from mlpkit.core.fileio import atomic_write_text
from mlpkit.core.version import __version__
from mlpkit.report.format import DASH, blas, fmt, machine
from mlpkit.report.page import Assets, Cell, badge, render_page, table
from mlpkit.report.sections import curves, epoch_of
from mlpkit.runs.folder import Run, load_run
from mlpkit.seed.comparison import Comparison, claim, compare, sentence, short_verdict
from mlpkit.seed.overrides import common_overrides, preset_overrides
from mlpkit.seed.presets import preset_config
from mlpkit.seed.reference import data_stats, note, stated
from mlpkit.seed.seed_section import seeds_section
from mlpkit.seed.tasks import SeedTask, seed_tasks


@dataclass
class _Context:
    """What every task section may use: the summary, the runs that loaded, shared figures."""

    summary: dict[str, Any]
    runs: dict[str, Run]
    assets: Assets
    missing: dict[str, str] = field(default_factory=dict)
    figures: dict[tuple[str, ...], list[dict[str, Any]]] = field(default_factory=dict)
    measured: dict[str, list[str]] = field(default_factory=dict)  # preset -> what its comparisons found


def _read_summary(reproduce_dir: Path) -> dict[str, Any]:
    path = reproduce_dir / "summary.json"
    if not reproduce_dir.is_dir():
        raise MlpkitError(f"reproduce folder {reproduce_dir} does not exist")
    if not path.exists():
        raise MlpkitError(f"{reproduce_dir} is not a finished reproduce folder: missing summary.json")
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise MlpkitError(f"{path} is unreadable: {exc}") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("presets", {}), dict):
        raise MlpkitError(f"{path} does not look like an mlpkit reproduce summary (no 'presets' table)")
    return summary


def _our_value(run: Run, metric: str) -> float | None:
    m = run.metrics
    if metric == "early_stop_epoch":
        return epoch_of(m, m.get("early_stop_step"))
    return m.get(metric)


# ------------------------------------------------------------------ remarks after a comparison
def _data_size(task: SeedTask, ctx: _Context) -> str:
    data = ctx.summary.get("data") or {}
    if data.get("n_train") is None:
        return ""
    return (
        f"Our statistics come from {data['n_train']:,} training images and are applied to all "
        f"{data.get('n_val', 0):,} validation images as well."
    )


def _architecture(task: SeedTask, ctx: _Context) -> str:
    run = ctx.runs[str(task.main)]
    hidden = run.config.get("model", {}).get("hidden", [64])
    return (
        f"{task.main} has hidden layers {list(hidden)} and 10 outputs; mlpkit counts every weight including the "
        "input bias column."
    )


def _contrast(task: SeedTask, ctx: _Context) -> str:
    other = task.contrast.get("preset", "")
    if other not in ctx.runs:
        return ""
    ns, ms = ctx.runs[other].metrics, ctx.runs[str(task.main)].metrics
    return (
        f"{task.contrast['change']} ({other}) training ends at validation loss {fmt(ns.get('val_loss'), 'loss')} "
        f"and accuracy {fmt(ns.get('val_accuracy'), 'acc')}, against {fmt(ms.get('val_loss'), 'loss')} and "
        f"{fmt(ms.get('val_accuracy'), 'acc')} {task.contrast['main']}."
    )


def _early_stop(task: SeedTask, ctx: _Context) -> str:
    m = ctx.runs[str(task.main)].metrics
    stop = m.get("early_stop_step")
    if not stop:
        return "Early stopping did not fire in our run."
    return f"Early stopping fired at step {stop:,} (epoch {epoch_of(m, stop):.1f})."


#: Remarks a task may ask for by name in tasks.toml ("extras"); each gets the task and the context.
EXTRAS: dict[str, Callable[[SeedTask, _Context], str]] = {
    "data_size": _data_size,
    "architecture": _architecture,
    "contrast": _contrast,
    "early_stop": _early_stop,
}


# ------------------------------------------------------------------ sections
def _verdict_cell(c: Comparison) -> Cell:
    if c.verdict == "matches":
        return badge("matches", "ok", c.detail)
    if c.verdict in ("higher", "lower"):
        return badge(c.verdict, "off", c.detail)
    return c.verdict + (f" ({c.detail})" if c.detail else "")


def _numbers_table(comparisons: list[Comparison]) -> dict[str, Any]:
    rows = [
        [c.name, c.shown(c.ours), c.shown(c.stated) if c.stated is not None else "(plot only)", _verdict_cell(c)]
        for c in comparisons
    ]
    return table(["", "ours", "the report's", "comparison"], rows, numeric=[1, 2], cls="seed-numbers")


def _task_context(task: SeedTask, ctx: _Context) -> dict[str, Any]:
    out: dict[str, Any] = {
        "key": task.key,
        "title": task.title,
        "quotes": list(task.quotes),
        "says": task.says,
        "absent": "",
        "figures": [],
        "overrides": "",
        "numbers": None,
        "verdict": "",
    }
    comparisons: list[Comparison] = []
    ready = task.source == "data" or task.main in ctx.runs
    if task.source == "data":
        data, reference = ctx.summary.get("data") or {}, data_stats()
        comparisons = [compare(k, data.get(k), reference.get(k)) for k in task.metrics]
    else:
        present = [p for p in task.overlay if p in ctx.runs]
        absent = [p for p in (task.overlay or (str(task.main),)) if p not in ctx.runs]
        if absent:
            reasons = "".join(f" ({ctx.missing[p]})" for p in absent if p in ctx.missing)
            out["absent"] = f"Not in this reproduce folder: {', '.join(absent)}{reasons}."
        if present:
            key = tuple(present)
            if key not in ctx.figures:  # tasks overlaying the same runs share one pair of figures
                ctx.figures[key] = curves(
                    [ctx.runs[p] for p in present],
                    present,
                    ctx.assets,
                    prefix=f"task{task.key}-",
                    title=" vs ".join(present),
                )
            out["figures"] = ctx.figures[key]
        if ready:
            run = ctx.runs[str(task.main)]
            changed = preset_overrides(run, preset_config)
            if changed:
                out["overrides"] = (
                    f"{task.main} ran with settings that differ from the preset "
                    f"({', '.join(changed)}), so its numbers need not land where the report's do."
                )
            reference = stated(str(task.main))
            comparisons = [compare(k, _our_value(run, k), reference.get(k)) for k in task.metrics]
    remarks = [EXTRAS[name](task, ctx) for name in task.extras] if ready else []
    checked = claim(task.main, task.baseline, ctx.runs) if task.main and task.baseline else None
    out["verdict"] = " ".join(s for s in (sentence(comparisons), checked.sentence() if checked else "", *remarks) if s)
    if task.main:
        found = [short_verdict(comparisons), checked.short() if checked else ""]
        ctx.measured.setdefault(task.main, []).extend(f for f in found if f)
    out["numbers"] = _numbers_table(comparisons) if comparisons else None
    return out


def _overview(ctx: _Context) -> dict[str, Any]:
    """Every preset's numbers beside the report's; the note says what the task sections measured."""
    rows = []
    for name, entry in ctx.summary.get("presets", {}).items():
        run = ctx.runs.get(name)
        m = run.metrics if run else (entry or {}).get("metrics") or {}
        ref = stated(name)
        rows.append(
            [
                name,
                fmt(m.get("val_accuracy"), "acc"),
                fmt(ref.get("val_accuracy"), "acc"),
                fmt(m.get("val_loss"), "loss"),
                fmt(ref.get("val_loss"), "loss"),
                fmt(m.get("train_loss"), "loss"),
                fmt(ref.get("train_loss"), "loss"),
                fmt(m.get("num_parameters"), "int"),
                fmt(m.get("early_stop_step"), "int"),
                fmt(m.get("wall_time_s"), "s"),
                "; ".join([note(name), *ctx.measured.get(name, [])]).strip("; "),
            ]
        )
    presets = table(
        [
            "preset",
            "val acc",
            "report",
            "val loss",
            "report",
            "train loss",
            "report",
            "parameters",
            "early stop step",
            "wall time",
            "note",
        ],
        rows,
        numeric=range(1, 10),
        cls="overview",
    )
    checks = ctx.summary.get("checks") or []
    rows = [
        [c.get("check", ""), fmt(c.get("value")), badge("passed", "ok") if c.get("passed") else badge("failed", "off")]
        for c in checks
    ]
    return {"presets": presets, "checks": table(["check", "value", "result"], rows, cls="checks") if checks else None}


def _about(ctx: _Context, reproduce_dir: Path) -> dict[str, Any]:
    env = next(iter(ctx.runs.values())).environment if ctx.runs else {}
    data = ctx.summary.get("data") or {}
    wall = ctx.summary.get("wall_time_s")
    images = f"{fmt(data.get('n_train'), 'int')} training images, {fmt(data.get('n_val'), 'int')} validation images"
    versions = f"{env.get('mlpkit', __version__)} / {env.get('numpy', '?')} / {env.get('python', '?')}"
    rows = [
        ["data", images],
        ["total wall time", fmt(wall, "s") if wall is not None else DASH],
        ["machine", machine(env)],
        ["BLAS", blas(env)],
        ["mlpkit / NumPy / Python", versions],
        ["folder", str(reproduce_dir)],
        ["settings changed from the presets", common_overrides(ctx.runs)],
    ]
    return table(None, rows, cls="about")


def build_seed_report(reproduce_dir: str | Path, out: str | Path) -> Path:
    """Write the HTML page that follows the seed report task by task (2a ... 4e).

    Parameters
    ----------
    reproduce_dir : path
        The folder ``mlpkit reproduce --out DIR`` fills: ``DIR/summary.json`` and one run folder
        per preset. Presets whose run folder is missing or broken get a note, not an error.
    out : path
        The HTML file to write; figures land as PNG and SVG in ``<out-stem>_files/`` (stale ones
        from an earlier page of the same name are removed).

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    MlpkitError
        ``reproduce_dir`` does not exist or has no readable summary.json.
    """
    reproduce_dir, out = Path(reproduce_dir), Path(out)
    summary = _read_summary(reproduce_dir)
    runs: dict[str, Run] = {}
    missing: dict[str, str] = {}
    for name, entry in summary.get("presets", {}).items():
        try:
            runs[name] = load_run(reproduce_dir / str((entry or {}).get("run_dir") or name))
        except MlpkitError as exc:
            missing[name] = str(exc)
    ctx = _Context(summary=summary, runs=runs, assets=Assets(out), missing=missing)
    tasks = [_task_context(task, ctx) for task in seed_tasks()]
    nav = [("overview", "Overview")] + [(f"task-{t['key']}", f"Task {t['key']}") for t in tasks]
    seeds = seeds_section(summary, reproduce_dir, ctx.assets)
    if seeds is not None:
        nav.append(("seeds", "Across seeds"))
    page = render_page(
        "seed_report.html.j2",
        packages=("mlpkit.seed",),
        title="mlpkit reproduces the seed report",
        subtitle=f"from {reproduce_dir}",
        nav=nav,
        about=_about(ctx, reproduce_dir),
        overview=_overview(ctx),
        tasks=tasks,
        seeds=seeds,
    )
    atomic_write_text(out, page)
    ctx.assets.prune()
    return out
