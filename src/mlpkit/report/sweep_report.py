"""The sweep report (``report.html`` of ``mlpkit sweep``), made from the sweep folder only: its
``results.json`` and the trials' run folders.

What it shows: the best configurations (mean +- std over seeds), each metric against each swept
hyperparameter with error bars, the validation curves of the top trials overlaid, and every
trial's row.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from mlpkit.core.errors import MlpkitError
from mlpkit.core.fileio import atomic_write_text
from mlpkit.report.format import fmt
from mlpkit.report.page import Assets, badge, render_page, table
from mlpkit.report.plots import comparison_figure
from mlpkit.report.sweep_figures import group_rows, hyperparameter_figure, label_of, mean_std
from mlpkit.runs.folder import load_run

#: Where a sweep folder keeps its results and its trials (written by `mlpkit.workflows.sweep`).
RESULTS = "results.json"
TRIALS = "trials"
METRIC = "val_accuracy"
FIGURE_METRICS = ("val_accuracy", "best_val_loss")
TOP_CONFIGS = 10
TOP_CURVES = 5


#: The best-configurations table's metric columns: (row key, format, heading).
_COLUMNS = (
    ("val_accuracy", "acc", "final val accuracy"),
    ("val_loss", "loss", "final val loss"),
    ("best_val_accuracy", "acc", "best val accuracy"),
    ("best_val_loss", "loss", "best val loss"),
    ("wall_time_s", "s", "wall time"),
)


def _pm(values: list[Any], kind: str) -> str:
    """mean +- std, both to the decimals the mean is shown with (a loss to 4 significant digits,
    seconds under 10 to hundredths), so the two line up and the std never turns scientific."""
    mean, std = mean_std(values)
    if mean != mean:  # NaN: no finite value
        return "\u2013"
    if len(values) <= 1:
        return fmt(mean, kind)
    if kind == "loss" and mean:
        decimals = max(0, 3 - math.floor(math.log10(abs(mean))))
        return f"{mean:.{decimals}f} \u00b1 {std:.{decimals}f}"
    if kind == "s" and mean < 10:
        return f"{mean:.2f} s \u00b1 {std:.2f} s"
    return f"{fmt(mean, kind)} \u00b1 {fmt(std, kind)}"


def _best_table(groups: list[dict[str, Any]], swept: list[str]) -> dict[str, Any]:
    ranked = sorted(groups, key=lambda g: -mean_std(g["values"])[0])[:TOP_CONFIGS]
    rows = []
    for rank, g in enumerate(ranked, 1):
        rs = g["rows"]
        rows.append(
            [str(rank), *[label_of(g["params"].get(k)) for k in swept], str(len(rs))]
            + [_pm([r.get(m) for r in rs], kind) for m, kind, _ in _COLUMNS]
        )
    headers = ["rank", *swept, "seeds"] + [title for _, _, title in _COLUMNS]
    first = 2 + len(swept)
    return table(headers, rows, numeric=range(first, first + 1 + len(_COLUMNS)), cls="best")


def _trials_table(rows: list[dict[str, Any]], swept: list[str]) -> dict[str, Any]:
    body = []
    for r in rows:
        status = r.get("status", "")
        cls = "ok" if status == "done" else "off"
        body.append(
            [r.get("trial", ""), badge(status, cls, r.get("error", "") or ""), *[label_of(r.get(k)) for k in swept],
             str(r.get("seed")), fmt(r.get("val_accuracy"), "acc"), fmt(r.get("val_loss"), "loss"),
             fmt(r.get("best_val_accuracy"), "acc"), fmt(r.get("wall_time_s"), "s"), r.get("worker", "") or ""]
        )  # fmt: skip
    headers = ["trial", "status", *swept, "seed", "val acc", "val loss", "best val acc", "wall s", "worker"]
    first = 3 + len(swept)
    return table(headers, body, numeric=range(first - 1, first + 4), cls="trials")


def _curves(sweep_dir: Path, groups: list[dict[str, Any]], assets: Assets) -> list[dict[str, Any]]:
    rows = sorted((r for g in groups for r in g["rows"]), key=lambda r: -(r.get(METRIC) or 0.0))[:TOP_CURVES]
    series = []
    for r in rows:
        try:
            run = load_run(sweep_dir / TRIALS / r["trial"])
        except MlpkitError:
            continue
        series.append((r["trial"], run.history, run.metrics))
    figures = []
    for kind in ("accuracy", "loss"):
        if not series:
            break
        paths = comparison_figure(
            series, assets.path(f"top-{kind}"), kind=kind, title=f"top {len(series)} trials: {kind}"
        )
        figures.append(
            assets.figure(paths, alt=f"validation {kind} of the top trials", caption=f"The {len(series)} trials with"
                          f" the highest final validation accuracy: {kind} against the gradient step.")
        )  # fmt: skip
    return figures


def build_sweep_report(sweep_dir: str | Path, out: str | Path) -> Path:
    """Write the sweep report of ``sweep_dir`` to ``out`` (figures also in ``<out-stem>_files/``).

    Parameters
    ----------
    sweep_dir : path
        A sweep folder (``results.json``, ``trials/<name>/``).
    out : path
        The HTML file to write.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    MlpkitError
        If ``sweep_dir`` has no readable ``results.json``.
    """
    sweep_dir, out = Path(sweep_dir), Path(out)
    try:
        results = json.loads((sweep_dir / RESULTS).read_text(encoding="utf-8"))
        rows, swept = list(results["rows"]), list(results["swept"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MlpkitError(f"{sweep_dir / RESULTS} is unreadable: {exc}") from None
    assets = Assets(out)
    groups = group_rows(rows, swept, METRIC)
    figures = []
    for key in swept:
        for metric in FIGURE_METRICS:
            metric_groups = group_rows(rows, swept, metric)
            if not metric_groups:
                continue
            paths = hyperparameter_figure(
                metric_groups,
                key,
                assets.path(f"{metric}-vs-{key.replace('.', '-')}"),
                metric=metric,
                others=[k for k in swept if k != key],
            )
            figures.append(
                assets.figure(paths, alt=f"{metric} against {key}", size="medium",
                              caption=f"{metric} against {key}: each point one configuration, the bar"
                                      " \u00b11 std over its seeds.")
            )  # fmt: skip
    done = sum(r.get("status") == "done" for r in rows)
    failed = sum(r.get("status") == "failed" for r in rows)
    nav = [("best", "Best configurations"), ("hyperparameters", "Metrics against hyperparameters"),
           ("curves", "Top trials' curves"), ("trials", "Every trial")]  # fmt: skip
    page = render_page(
        "sweep_report.html.j2",
        title=f"mlpkit sweep: {sweep_dir.name}",
        subtitle=f"{len(rows)} trials in {sweep_dir}: {done} done, {failed} failed,"
        f" {len(rows) - done - failed} pending",
        nav=nav,
        swept=swept,
        best=_best_table(groups, swept) if groups else None,
        figures=figures,
        curves=_curves(sweep_dir, groups, assets),
        trials=_trials_table(rows, swept),
    )
    atomic_write_text(out, page)
    assets.prune()
    return out
