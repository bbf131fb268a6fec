"""The run report: one page for one or several run folders (``mlpkit report``).

Configurations side by side, loss and accuracy curves overlaid (training loss smoothed with a
+-1 std band, the early-stopping point marked), a final-metrics table, wall time and machine,
and per run the confusion matrix, per-class accuracy, the most-confused digit pairs, a gallery
of misclassified validation digits and the first layer's weights as 28x28 images.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlpkit.core.errors import MlpkitError
from mlpkit.core.fileio import atomic_write_text
from mlpkit.core.metrics import confusion_matrix, most_confused_pairs, per_class_accuracy
from mlpkit.report.figures import confusion_figure, encode_png_gray, gallery_figure, pixel_weights, weights_figure
from mlpkit.report.format import fmt
from mlpkit.report.page import Assets, png_data_uri, render_page, table
from mlpkit.report.provenance import BaseConfigs, preset_overrides
from mlpkit.report.sections import config_table, curves, environment_table, labels, metrics_table
from mlpkit.runs.folder import Run, load_run

#: Section ids of a run report; per run ``<id>-<k>`` for k = 1, 2, ...
REPORT_SECTIONS = ("metrics", "config", "curves", "environment")
RUN_SECTIONS = ("confusion", "per-class", "confused-pairs", "gallery", "weights")
GALLERY_SIZE = 48
CONFUSED_PAIRS = 8
MAX_WEIGHT_UNITS = 128


def _confusion(
    cm: np.ndarray, label: str, tag: str, n: int, assets: Assets, names: list[str], noun: str
) -> dict[str, Any]:
    k = cm.shape[0]
    fig = confusion_figure(
        cm,
        assets.path(f"{tag}-confusion"),
        title=f"{label}: confusion matrix ({n:,} validation inputs)",
        labels=names,
        noun=noun,
        rows="validation inputs",
    )
    rows = [[f"true {names[i]}"] + [str(int(v)) for v in cm[i]] + [str(int(cm[i].sum()))] for i in range(k)]
    rows.append(["all"] + [str(int(v)) for v in cm.sum(axis=0)] + [str(int(cm.sum()))])
    return {
        "figure": assets.figure(
            fig,
            alt=f"{label} confusion matrix",
            size="small",
            caption=f"Rows: true {noun} (with its accuracy); columns: predicted {noun}. "
            "Cell colour is the share of the row (square-root scale).",
        ),
        "total": int(cm.sum()),
        "table": table(
            ["", *[f"pred {names[j]}" for j in range(k)], "total"], rows, numeric=range(1, k + 2), cls="confusion"
        ),
    }


def _per_class(cm: np.ndarray, names: list[str], noun: str) -> dict[str, Any]:
    acc = per_class_accuracy(cm)
    rows = [
        [names[i], f"{int(cm[i].sum()):,}", f"{int(cm[i, i]):,}", fmt(float(a), "acc") if np.isfinite(a) else "\u2013"]
        for i, a in enumerate(acc)
    ]
    worst = int(np.nanargmin(acc)) if np.isfinite(acc).any() else None
    return {
        "hardest": f"Hardest {noun}: {names[worst]} ({acc[worst]:.2%} correct)." if worst is not None else "",
        "table": table(
            [noun, "inputs" if noun == "class" else "images", "correct", "accuracy"],
            rows,
            numeric=[1, 2, 3],
            cls="per-class",
        ),
    }


def _pairs(cm: np.ndarray, names: list[str], noun: str) -> dict[str, Any]:
    pairs = most_confused_pairs(cm, CONFUSED_PAIRS)
    errors = int(cm.sum() - np.trace(cm))
    rows = [
        [names[t], names[p], f"{n:,}", f"{n / max(int(cm[t].sum()), 1):.2%}", f"{n / max(errors, 1):.1%}"]
        for t, p, n in pairs
    ]
    return {
        "summary": f"{errors:,} of {int(cm.sum()):,} validation inputs are misclassified.",
        "table": table(
            ["true", "predicted as", "count", f"share of the true {noun}", "share of all errors"],
            rows,
            numeric=[2, 3, 4],
            cls="pairs",
        )
        if pairs
        else None,
    }


def _gallery(pred: dict[str, np.ndarray], label: str, tag: str, assets: Assets, names: list[str]) -> dict[str, Any]:
    index = pred.get("misclassified_index")
    images = pred.get("misclassified_images")
    if index is None or images is None or len(index) == 0:
        return {"note": "No misclassified images were saved for this run.", "digits": [], "links": [], "count": 0}
    index, images = index[:GALLERY_SIZE], images[:GALLERY_SIZE]
    y_true, y_pred = pred["y_true"][index], pred["y_pred"][index]
    conf = pred["proba"][index, y_pred]
    digits = [
        {
            "true": names[int(t)],
            "pred": names[int(p)],
            "confidence": f"{c:.4f}",
            "percent": f"{c:.1%}",
            "index": int(i),
            "src": png_data_uri(encode_png_gray(255 - np.asarray(img, dtype=np.uint8))),
        }
        for img, t, p, c, i in zip(images, y_true, y_pred, conf, index)
    ]
    fig = gallery_figure(
        images,
        [names[int(t)] for t in y_true],
        [names[int(p)] for p in y_pred],
        conf,
        assets.path(f"{tag}-misclassified"),
        title=f"{label}: most confident mistakes (true\u2192predicted, confidence)",
    )
    return {"note": None, "digits": digits, "links": assets.links(fig), "count": len(index)}


def _weights(run: Run, label: str, tag: str, assets: Assets) -> dict[str, Any]:
    if not (run.path / "weights.npz").exists():
        return {"note": "This run folder has no weights.npz.", "figure": None}
    try:
        weights = run.weights()
    except Exception as exc:
        raise MlpkitError(f"{run.path / 'weights.npz'} is unreadable: {type(exc).__name__}: {exc}") from None
    first = weights.get("layers.0.weight")
    images = pixel_weights(first) if first is not None else None
    if images is None:
        shape = None if first is None else tuple(first.shape)
        return {"note": f"The first layer ({shape}) does not take 28x28 images; nothing to draw.", "figure": None}
    fig = weights_figure(
        images,
        assets.path(f"{tag}-weights"),
        max_units=MAX_WEIGHT_UNITS,
        title=f"{label}: first-layer weights of {len(images)} hidden units (red +, blue \u2212)",
    )
    extra = f" (the first {MAX_WEIGHT_UNITS} of {len(images)})" if len(images) > MAX_WEIGHT_UNITS else ""
    return {
        "note": None,
        "figure": assets.figure(
            fig,
            alt=f"{label} first-layer weights as images",
            size="medium",
            caption=f"Each tile is one hidden unit's 784 input weights as a 28x28 image{extra}, scaled to its own "
            "largest |w|: what the unit looks for (red) and against (blue).",
        ),
    }


def class_names(metrics: dict[str, Any] | None, n_classes: int) -> list[str]:
    """The run's class labels as text (``metrics.json`` records them; older runs: 0..n-1)."""
    classes = (metrics or {}).get("classes")
    if isinstance(classes, list) and len(classes) == n_classes:
        return [str(c) for c in classes]
    return [str(i) for i in range(n_classes)]


def run_context(
    k: int, run: Run, label: str, assets: Assets, base_configs: BaseConfigs | None = None
) -> dict[str, Any]:
    """Everything the per-run sections of run ``k`` (1-based) show, as template data."""
    tag = f"{k:02d}-{label}"
    ctx: dict[str, Any] = {
        "k": k,
        "label": label,
        "name": run.name,
        "description": run.config.get("description", ""),
        "overrides": ", ".join(preset_overrides(run, base_configs)),
        "folder": str(run.path),
        "weights": _weights(run, label, tag, assets),
    }
    pred = run.predictions()
    ctx["predictions"] = pred is not None
    if pred is not None:
        y_true, y_pred, proba = pred["y_true"], pred["y_pred"], pred["proba"]
        n_classes = int(max(proba.shape[1] if proba.ndim == 2 else 0, y_true.max() + 1, y_pred.max() + 1))
        cm = confusion_matrix(y_true, y_pred, n_classes)
        names = class_names(run.metrics, n_classes)
        noun = "digit" if names == [str(i) for i in range(10)] else "class"
        ctx.update(
            noun=noun,
            confusion=_confusion(cm, label, tag, len(y_true), assets, names, noun),
            per_class=_per_class(cm, names, noun),
            pairs=_pairs(cm, names, noun),
            gallery=_gallery(pred, label, tag, assets, names),
        )
    return ctx


def build_report(
    run_dirs: Sequence[str | Path],
    out: str | Path,
    *,
    title: str | None = None,
    base_configs: BaseConfigs | None = None,
) -> Path:
    """Write a self-contained HTML report of one or several run folders.

    Figures also land as PNG and SVG in ``<out-stem>_files/`` beside the page (figures there that
    this page did not write are removed: they belonged to an earlier page of the same name).

    Parameters
    ----------
    run_dirs : sequence of path
        Finished run folders (see :mod:`mlpkit.runs.folder`), in the order to show them.
    out : path
        The HTML file to write (``.html`` or ``.htm``).
    title : str, optional
        The page title; by default "mlpkit report: " and the run names.
    base_configs : callable, optional
        name -> the config dict a run of that name started from (the CLI passes the shipped
        presets); a run whose name it knows shows the settings it changed beside its name.
        None: no such line.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    MlpkitError
        No run folder given, a missing or broken run folder, or an output name not ending in
        .html; raised before anything is written.
    """
    if not run_dirs:
        raise MlpkitError("report needs at least one run folder")
    runs = [load_run(Path(d)) for d in run_dirs]
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise MlpkitError(f"report output {out} must end in .html")
    names = labels(runs)
    assets = Assets(out)
    title = title or ("mlpkit report: " + ", ".join(names) if len(names) <= 4 else f"mlpkit report: {len(names)} runs")
    nav = [
        ("metrics", "Final metrics"),
        ("config", "Configuration"),
        ("curves", "Curves"),
        ("environment", "Wall time and machine"),
    ]
    nav += [(f"run-{k}", f"Run {k}: {name}") for k, name in enumerate(names, start=1)]
    subtitle = f"{len(runs)} run{'s' if len(runs) > 1 else ''}: " + ", ".join(str(r.path) for r in runs)
    page = render_page(
        "run_report.html.j2",
        title=title,
        subtitle=subtitle,
        nav=nav,
        metrics=metrics_table(runs, names),
        config=config_table(runs, names),
        curves=curves(runs, names, assets),
        environment=environment_table(runs, names),
        runs=[run_context(k, run, name, assets, base_configs) for k, (run, name) in enumerate(zip(runs, names), 1)],
    )
    atomic_write_text(out, page)
    assets.prune()
    return out
