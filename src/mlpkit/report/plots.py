"""Figures made from saved histories (never from live objects), as in the seed report:
loss and accuracy against the gradient step, the training loss smoothed as the mean of
each window of steps with a +-1 std band, validation as a line, several runs overlaid.

Figures are drawn on :class:`matplotlib.figure.Figure` objects, never through pyplot, so a
report made inside a notebook leaves the user's backend and open figures alone."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

SMOOTH_WINDOW = 10
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]


def new_figure(width: float, height: float, *, dpi: float | None = None) -> tuple[Figure, Axes]:
    """A pyplot-free figure of ``width`` x ``height`` inches with one axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi)
    return fig, fig.subplots()


def smooth(
    steps: Sequence[float], values: Sequence[float], window: int = SMOOTH_WINDOW
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and std over consecutive windows of ``window`` steps; x is each window's last step."""
    y = np.asarray(values, dtype=np.float64)
    x = np.asarray(steps)
    n = len(y) // window
    if n == 0:
        return x, y, np.zeros_like(y)
    chunks = y[: n * window].reshape(n, window)
    return x[window - 1 : n * window : window], chunks.mean(axis=1), chunks.std(axis=1)


def _early_stop_step(metrics: dict[str, Any] | None) -> int | None:
    return None if not metrics else metrics.get("early_stop_step")


def draw_loss(
    ax: Axes,
    history: dict[str, Any],
    *,
    label: str,
    color: str,
    window: int = SMOOTH_WINDOW,
    metrics: dict[str, Any] | None = None,
) -> None:
    train, val = history["train"], history["validation"]
    x, mean, std = smooth(train["step"], train["loss"], window)
    ax.plot(x, mean, color=color, alpha=0.55, lw=1, label=f"{label} train (mean of {window} steps)")
    ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.15, lw=0)
    ax.plot(val["step"], val["val_loss"], color=color, lw=2, label=f"{label} validation")
    stop = _early_stop_step(metrics)
    if stop:
        ax.axvline(stop, color=color, ls=":", lw=1.2, label=f"{label} early stop (step {stop})")


def draw_accuracy(
    ax: Axes, history: dict[str, Any], *, label: str, color: str, metrics: dict[str, Any] | None = None
) -> None:
    val = history["validation"]
    ax.plot(val["step"], val["train_accuracy"], color=color, lw=1.2, ls="--", label=f"{label} train")
    ax.plot(val["step"], val["val_accuracy"], color=color, lw=2, label=f"{label} validation")
    stop = _early_stop_step(metrics)
    if stop:
        ax.axvline(stop, color=color, ls=":", lw=1.2)


def _zoom(ax: Axes, kind: str, histories: Sequence[dict[str, Any]]) -> None:
    """Seed-like zoomed y-limits: loss from 0 to a robust top, accuracy near the top."""
    if kind == "loss":
        vals = np.concatenate(
            [np.asarray(h["validation"]["val_loss"], dtype=float) for h in histories] or [np.array([1.0])]
        )
        vals = vals[np.isfinite(vals)]
        top = float(np.percentile(vals, 95)) * 1.6 if len(vals) else 1.0
        ax.set_ylim(0, max(min(top, 1.0), 0.05))
    else:
        vals = np.concatenate(
            [np.asarray(h["validation"]["val_accuracy"], dtype=float) for h in histories] or [np.array([0.9])]
        )
        vals = vals[np.isfinite(vals)]
        low = float(np.percentile(vals, 5)) - 0.02 if len(vals) else 0.85
        ax.set_ylim(max(0.0, min(low, 0.95)), 1.0 + 1e-3)


def comparison_figure(
    runs: Sequence[tuple[str, dict[str, Any], dict[str, Any] | None]],
    path: str | Path,
    *,
    kind: str,
    title: str = "",
    window: int = SMOOTH_WINDOW,
) -> list[Path]:
    """Overlay runs on one loss or accuracy figure, saved as PNG and SVG.

    Parameters
    ----------
    runs : sequence of (label, history, metrics)
        Each run's legend label, its history.json (``train.step`` filled in) and its
        metrics.json (for the early-stopping line; may be None).
    path : path
        The files' path without suffix.
    kind : {"loss", "accuracy"}
        Which figure.
    title : str
        The figure title (none if empty).
    window : int
        Training steps per smoothing window of the loss.

    Returns
    -------
    list of Path
        The PNG and the SVG file.
    """
    fig, ax = new_figure(8, 5, dpi=120)
    for i, (label, history, metrics) in enumerate(runs):
        color = COLORS[i % len(COLORS)]
        if kind == "loss":
            draw_loss(ax, history, label=label, color=color, window=window, metrics=metrics)
        else:
            draw_accuracy(ax, history, label=label, color=color, metrics=metrics)
    _zoom(ax, kind, [h for _, h, _ in runs])
    ax.set_xlabel("gradient step", fontsize=11)
    ax.set_ylabel("cross-entropy loss" if kind == "loss" else "accuracy", fontsize=11)
    if title:
        ax.set_title(title, fontsize=12)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right" if kind == "loss" else "lower right")
    fig.tight_layout()
    return save_figure(fig, path)


def save_figure(fig: Figure, path: str | Path, *, dpi: float | None = None) -> list[Path]:
    """Write ``fig`` as ``path``.png and ``path``.svg (each atomically); return both paths."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix in (".png", ".svg"):
        target = path.with_suffix(suffix)
        tmp = target.with_name(f".{target.name}.tmp{suffix}")
        fig.savefig(tmp, dpi=dpi if dpi is not None else "figure")
        tmp.replace(target)
        written.append(target)
    return written


def run_figures(
    history: dict[str, Any], metrics: dict[str, Any] | None, out_dir: str | Path, *, label: str
) -> list[Path]:
    """loss.png/svg and accuracy.png/svg for one run."""
    out_dir = Path(out_dir)
    written = comparison_figure([(label, history, metrics)], out_dir / "loss", kind="loss", title=f"{label}: loss")
    written += comparison_figure(
        [(label, history, metrics)], out_dir / "accuracy", kind="accuracy", title=f"{label}: accuracy"
    )
    return written
