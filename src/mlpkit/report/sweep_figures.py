"""Figures of sweeps and seeds: a metric against one hyperparameter, mean +- std over seeds as error bars,
one series per setting of the other swept keys; curves with a +-1 std band over seeds. Drawn without
pyplot (see `mlpkit.report.plots`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlpkit.report.plots import COLORS, new_figure, save_figure

MAX_SERIES = 8


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def label_of(value: Any) -> str:
    """A swept value as an axis label: lists as ``64x64``, floats to 4 significant digits."""
    if isinstance(value, list | tuple):
        return "x".join(label_of(v) for v in value) or "[]"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0 for a single value) of finite values."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if len(v) == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def hyperparameter_figure(
    groups: Sequence[dict[str, Any]],
    key: str,
    path: str | Path,
    *,
    metric: str,
    others: Sequence[str],
) -> list[Path]:
    """``metric`` against ``key``: one point per configuration (mean +- std over its seeds).

    Parameters
    ----------
    groups : sequence of dict
        One per configuration: ``{"params": {...}, "values": [metric per seed]}``.
    key : str
        The hyperparameter on the x axis (numbers on a numeric axis, anything else as categories).
    path : path
        The files' path without suffix.
    metric : str
        The metric's name (axis label).
    others : sequence of str
        The other swept keys: configurations agreeing on them form one series (a line), up to
        `MAX_SERIES` series; beyond that, points without lines.

    Returns
    -------
    list of Path
        The PNG and the SVG file.
    """
    xs = [g["params"].get(key) for g in groups]
    numeric = all(is_number(x) for x in xs)
    categories: list[str] = []
    if not numeric:
        for x in xs:
            if label_of(x) not in categories:
                categories.append(label_of(x))
    series: dict[str, list[tuple[float, float, float]]] = {}
    for g, x in zip(groups, xs):
        name = ", ".join(f"{o}={label_of(g['params'].get(o))}" for o in others) or metric
        mean, std = mean_std(g["values"])
        pos = float(x) if numeric else float(categories.index(label_of(x)))
        series.setdefault(name, []).append((pos, mean, std))
    lines = len(series) <= MAX_SERIES
    fig, ax = new_figure(7, 4.5, dpi=120)
    for i, (name, points) in enumerate(series.items()):
        points.sort()
        x, m, s = (np.array(c) for c in zip(*points))
        color = COLORS[i % len(COLORS)] if lines else COLORS[0]
        ax.errorbar(
            x, m, yerr=s, fmt="o-" if lines and len(points) > 1 else "o", color=color, capsize=4, lw=1.5, ms=5,
            label=name if lines and others else None, alpha=1.0 if lines else 0.6,
        )  # fmt: skip
    if numeric:
        values = [float(x) for x in xs]
        if min(values) > 0 and max(values) / min(values) >= 20:
            ax.set_xscale("log")
    else:
        ax.set_xticks(range(len(categories)), categories)
        ax.set_xlim(-0.5, len(categories) - 0.5)
    ax.set_xlabel(key, fontsize=11)
    ax.set_ylabel(f"{metric} (mean \u00b1 std over seeds)", fontsize=11)
    ax.grid(alpha=0.3)
    if lines and others:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def group_rows(rows: Sequence[dict[str, Any]], swept: Sequence[str], metric: str) -> list[dict[str, Any]]:
    """Finished rows grouped by their swept values (the seeds of one configuration together)."""
    groups: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row.get("status") != "done":
            continue
        params = {k: row.get(k) for k in swept}
        key = json.dumps(params, sort_keys=True)
        g = groups.setdefault(key, {"params": params, "values": [], "rows": []})
        g["values"].append(row.get(metric))
        g["rows"].append(row)
    return list(groups.values())


def band_figure(
    series: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
    path: str | Path,
    *,
    ylabel: str,
    title: str = "",
) -> list[Path]:
    """Curves with a +-1 std band each (the spread over seeds), overlaid.

    Parameters
    ----------
    series : sequence of (label, steps, mean, std)
        One curve per entry.
    path : path
        The files' path without suffix.
    ylabel : str
        The y axis label.
    title : str
        The figure title (none if empty).

    Returns
    -------
    list of Path
        The PNG and the SVG file.
    """
    fig, ax = new_figure(8, 5, dpi=120)
    tops = []
    for i, (label, steps, mean, std) in enumerate(series):
        color = COLORS[i % len(COLORS)]
        ax.plot(steps, mean, color=color, lw=2, label=f"{label} (mean \u00b1 std)")
        ax.fill_between(steps, mean - std, mean + std, color=color, alpha=0.2, lw=0)
        if len(mean):
            tops.append(float(np.percentile(mean, 95)))
    if tops and "loss" in ylabel:
        ax.set_ylim(0, max(max(tops) * 1.3, 0.05))
    ax.set_xlabel("gradient step", fontsize=11)
    ax.set_ylabel(ylabel, fontsize=11)
    if title:
        ax.set_title(title, fontsize=12)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return save_figure(fig, path)
