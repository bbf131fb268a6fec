"""Figures made from saved histories (never from live objects), as in the seed report:
loss and accuracy against the gradient step, the training loss smoothed as the mean of
each window of steps with a +-1 std band, validation as a line, several runs overlaid."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

SMOOTH_WINDOW = 10
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def smooth(steps: Sequence[float], values: Sequence[float], window: int = SMOOTH_WINDOW):
    """Mean and std over consecutive windows of ``window`` steps; x is each window's last step."""
    values = np.asarray(values, dtype=np.float64)
    steps = np.asarray(steps)
    n = len(values) // window
    if n == 0:
        return steps, values, np.zeros_like(values)
    chunks = values[: n * window].reshape(n, window)
    return steps[window - 1 : n * window : window], chunks.mean(axis=1), chunks.std(axis=1)


def _early_stop_step(metrics: dict[str, Any] | None) -> int | None:
    return None if not metrics else metrics.get("early_stop_step")


def draw_loss(ax, history: dict[str, Any], *, label: str, color: str, window: int = SMOOTH_WINDOW,
              metrics: dict[str, Any] | None = None) -> None:
    train, val = history["train"], history["validation"]
    x, mean, std = smooth(train["step"], train["loss"], window)
    ax.plot(x, mean, color=color, alpha=0.55, lw=1, label=f"{label} train (mean of {window} steps)")
    ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.15, lw=0)
    ax.plot(val["step"], val["val_loss"], color=color, lw=2, label=f"{label} validation")
    stop = _early_stop_step(metrics)
    if stop:
        ax.axvline(stop, color=color, ls=":", lw=1.2, label=f"{label} early stop (step {stop})")


def draw_accuracy(ax, history: dict[str, Any], *, label: str, color: str,
                  metrics: dict[str, Any] | None = None) -> None:
    val = history["validation"]
    ax.plot(val["step"], val["train_accuracy"], color=color, lw=1.2, ls="--", label=f"{label} train")
    ax.plot(val["step"], val["val_accuracy"], color=color, lw=2, label=f"{label} validation")
    stop = _early_stop_step(metrics)
    if stop:
        ax.axvline(stop, color=color, ls=":", lw=1.2)


def _zoom(ax, kind: str, histories: Sequence[dict[str, Any]]) -> None:
    """Seed-like zoomed y-limits: loss from 0 to a robust top, accuracy near the top."""
    if kind == "loss":
        vals = np.concatenate([np.asarray(h["validation"]["val_loss"], dtype=float) for h in histories] or [[1.0]])
        vals = vals[np.isfinite(vals)]
        top = float(np.percentile(vals, 95)) * 1.6 if len(vals) else 1.0
        ax.set_ylim(0, max(min(top, 1.0), 0.05))
    else:
        vals = np.concatenate([np.asarray(h["validation"]["val_accuracy"], dtype=float) for h in histories] or [[0.9]])
        vals = vals[np.isfinite(vals)]
        low = float(np.percentile(vals, 5)) - 0.02 if len(vals) else 0.85
        ax.set_ylim(max(0.0, min(low, 0.95)), 1.0 + 1e-3)


def comparison_figure(runs: Sequence[tuple[str, dict[str, Any], dict[str, Any] | None]], path: str | Path, *,
                      kind: str, title: str = "", window: int = SMOOTH_WINDOW) -> list[Path]:
    """Overlay runs (label, history, metrics) on one loss or accuracy figure; PNG and SVG."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
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


def save_figure(fig, path: str | Path, *, dpi: float | None = None) -> list[Path]:
    """Write ``fig`` as ``path``.png and ``path``.svg (each atomically), close it, return both paths."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix in (".png", ".svg"):
        target = path.with_suffix(suffix)
        tmp = target.with_name(f".{target.name}.tmp{suffix}")
        fig.savefig(tmp, dpi=dpi if dpi is not None else "figure")
        tmp.replace(target)
        written.append(target)
    _pyplot().close(fig)
    return written


def run_figures(history: dict[str, Any], metrics: dict[str, Any] | None, out_dir: str | Path, *,
                label: str) -> list[Path]:
    """loss.png/svg and accuracy.png/svg for one run."""
    out_dir = Path(out_dir)
    written = comparison_figure([(label, history, metrics)], out_dir / "loss", kind="loss", title=f"{label}: loss")
    written += comparison_figure([(label, history, metrics)], out_dir / "accuracy", kind="accuracy",
                                 title=f"{label}: accuracy")
    return written
