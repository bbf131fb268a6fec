"""Self-contained HTML reports made from run folders (never from live objects).

``build_report(run_dirs, out)``: one page for one or several runs: configurations side by
side, loss and accuracy curves overlaid (training loss smoothed with a +-1 std band, the
early-stopping point marked), a final-metrics table, wall time and machine, and per run the
confusion matrix, per-class accuracy, the most-confused digit pairs, a gallery of
misclassified validation digits and the first layer's weights as 28x28 images.

``build_seed_report(reproduce_dir, out)``: the page ``mlpkit reproduce`` writes; it follows
the seed report task by task with our figure, our numbers, the report's stated numbers and a
generated sentence on how they compare.

Every figure is saved as PNG and SVG in ``<out-stem>_files/`` next to the HTML and is also
embedded in the HTML as a base64 ``data:`` URI, so the HTML file alone opens with no network
and no other file; a Content-Security-Policy forbids any other resource and any script.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from mlpkit import __version__
from mlpkit.core.errors import MlpkitError
from mlpkit.core.fileio import atomic_write_text
from mlpkit.core.metrics import confusion_matrix, most_confused_pairs, per_class_accuracy
from mlpkit.report.plots import SMOOTH_WINDOW, comparison_figure
from mlpkit.report.figures import (
    confusion_figure,
    encode_png_gray,
    gallery_figure,
    pixel_weights,
    weights_figure,
)
from mlpkit.runs.folder import Run, load_run

#: Section ids of a run report; per run ``<id>-<k>`` for k = 1, 2, ...
REPORT_SECTIONS = ("metrics", "config", "curves", "environment")
RUN_SECTIONS = ("confusion", "per-class", "confused-pairs", "gallery", "weights")
GALLERY_SIZE = 48
CONFUSED_PAIRS = 8

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

CSS = """
:root { --ink:#1d2330; --muted:#5b6475; --line:#d9dee7; --accent:#1f5fae; --bad:#b2182b; --good:#1a7f37;
        --warn:#fff4cc; --panel:#f6f8fb; }
* { box-sizing: border-box; }
body { font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Helvetica, Arial, sans-serif;
       color: var(--ink); margin: 0; background: #fff; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 60px; }
header { border-bottom: 2px solid var(--line); margin-bottom: 12px; }
h1 { font-size: 26px; margin: 8px 0 4px; }
h2 { font-size: 21px; margin: 36px 0 10px; padding-top: 8px; border-top: 1px solid var(--line); }
h3 { font-size: 16px; margin: 18px 0 8px; }
.sub { color: var(--muted); margin: 0 0 12px; }
nav ol { columns: 3; margin: 6px 0 0; padding-left: 20px; font-size: 14px; }
a { color: var(--accent); }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 13.5px; }
th, td { border: 1px solid var(--line); padding: 4px 9px; text-align: left; vertical-align: top; }
th { background: var(--panel); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.differs td { background: var(--warn); }
.scroll { overflow-x: auto; }
figure { margin: 10px 0 18px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); background: #fff; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
figure.wide img { max-width: min(100%, 980px); }
figure.medium img { max-width: min(100%, 640px); }
figure.small img { max-width: min(100%, 560px); }
.pair { display: grid; grid-template-columns: minmax(0, 580px) minmax(0, 1fr); gap: 24px; align-items: start; }
@media (max-width: 900px) { .pair { grid-template-columns: 1fr; } }
.gallery { display: flex; flex-wrap: wrap; gap: 8px; }
.gallery figure { margin: 0; width: 86px; text-align: center; }
.gallery img { width: 84px; height: 84px; image-rendering: pixelated; border: 1px solid var(--line); }
.gallery figcaption { margin: 0; font-size: 12px; line-height: 1.25; color: var(--ink); }
.gallery .pred { color: var(--bad); font-weight: 600; }
.verdict { background: var(--panel); border-left: 4px solid var(--accent); padding: 8px 12px; }
blockquote { margin: 8px 0; padding: 4px 12px; border-left: 4px solid var(--line); color: var(--muted); }
.ok { color: var(--good); font-weight: 600; }
.off { color: var(--bad); font-weight: 600; }
.note { color: var(--muted); font-style: italic; }
details summary { cursor: pointer; color: var(--accent); font-size: 14px; }
footer { margin-top: 40px; color: var(--muted); font-size: 12.5px; }
"""


# ------------------------------------------------------------------ small HTML helpers
class Raw(str):
    """Text that is already HTML (not escaped again)."""


def esc(value: Any) -> str:
    return value if isinstance(value, Raw) else html.escape(str(value), quote=True)


def _table(headers: Sequence[Any] | None, rows: Iterable[Sequence[Any]], *, numeric: Sequence[int] = (),
           row_classes: Sequence[str] | None = None, cls: str = "") -> Raw:
    """A table (no header row when ``headers`` is None); columns in ``numeric`` are right-aligned."""
    head = "".join(f'<th{" class=num" if i in numeric else ""}>{esc(h)}</th>' for i, h in enumerate(headers or []))
    body = []
    for r, row in enumerate(rows):
        klass = f' class="{row_classes[r]}"' if row_classes and row_classes[r] else ""
        cells = "".join(f'<td{" class=num" if i in numeric else ""}>{esc(c)}</td>' for i, c in enumerate(row))
        body.append(f"<tr{klass}>{cells}</tr>")
    attr = f' class="{cls}"' if cls else ""
    thead = f"<thead><tr>{head}</tr></thead>" if headers is not None else ""
    return Raw(f'<div class="scroll"><table{attr}>{thead}<tbody>{"".join(body)}</tbody></table></div>')


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "run"


def _fmt(value: Any, kind: str = "") -> str:
    """Numbers as a reader wants them: accuracy 4 decimals, loss 4 significant digits."""
    if value is None:
        return "\u2013"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if kind == "acc":
        return f"{value:.4f}"
    if kind == "loss":
        return f"{value:.4g}"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "s":
        return _duration(float(value))
    if kind == "full":
        return repr(float(value))
    if kind == "epoch":
        return f"{value:.1f}" if isinstance(value, float) and not float(value).is_integer() else f"{value:g}"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v, kind) for v in value) + "]"
    return str(value)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{int(minutes)} min {s:.0f} s"
    hours, minutes = divmod(minutes, 60)
    return f"{int(hours)} h {int(minutes)} min"


class Assets:
    """The ``<stem>_files`` folder: figures are written there (PNG + SVG) and embedded."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.folder = out.with_name(f"{out.stem}_files")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.written: list[Path] = []

    def path(self, name: str) -> Path:
        return self.folder / _slug(name)

    def figure(self, paths: Sequence[Path], *, alt: str, caption: str = "", size: str = "wide") -> Raw:
        """Embed the PNG of ``paths`` as a data URI; link both files for download."""
        self.written += list(paths)
        png = next(p for p in paths if p.suffix == ".png")
        links = " \u00b7 ".join(
            f'<a href="{esc(self.folder.name + "/" + p.name)}">{p.suffix[1:].upper()}</a>' for p in paths)
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        cap = f"{esc(caption)} " if caption else ""
        return Raw(f'<figure class="{size}"><img src="data:image/png;base64,{data}" alt="{esc(alt)}">'
                   f"<figcaption>{cap}[{links}]</figcaption></figure>")


def _page(title: str, subtitle: str, nav: Sequence[tuple[str, str]], body: str) -> str:
    items = "".join(f'<li><a href="#{esc(i)}">{esc(t)}</a></li>' for i, t in nav)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body><main>"
        f"<header><h1>{esc(title)}</h1><p class=\"sub\">{esc(subtitle)}</p>"
        f"<nav><ol>{items}</ol></nav></header>\n{body}\n"
        f"<footer>Generated by mlpkit {esc(__version__)} on {esc(time.strftime('%Y-%m-%d %H:%M:%S %Z'))} from run "
        "folders only. Figures are embedded; PNG and SVG copies are in the folder next to this file.</footer>"
        "</main></body></html>\n"
    )


def _section(sid: str, title: str, content: str, *, level: int = 2) -> str:
    return f'<section id="{esc(sid)}"><h{level}>{esc(title)}</h{level}>{content}</section>\n'


# ------------------------------------------------------------------ pieces from a run
def _labels(runs: Sequence[Run]) -> list[str]:
    """Run names, made unique with the folder name where two runs share one."""
    names = [r.name for r in runs]
    out = []
    for r, n in zip(runs, names):
        out.append(n if names.count(n) == 1 else f"{n} ({r.path.name})")
    if len(set(out)) < len(out):
        out = [f"{n} #{i + 1}" for i, n in enumerate(out)]
    return out


def _flat_config(config: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            for k2, v2 in value.items():
                flat[f"{key}.{k2}"] = v2
        else:
            flat[key] = value
    return flat


def _history(run: Run) -> dict[str, Any]:
    """history.json with the training steps filled in when a compact file leaves them out."""
    h = run.history
    train = dict(h.get("train", {}))
    if "step" not in train:
        train["step"] = list(range(1, len(train.get("loss", [])) + 1))
    return {"train": train, "validation": h.get("validation", {})}


def _epoch_of(metrics: dict[str, Any], step: Any) -> float | None:
    spe = metrics.get("steps_per_epoch")
    return None if step is None or not spe else step / spe


METRIC_COLUMNS: list[tuple[str, str, str]] = [
    ("val_accuracy", "val accuracy", "acc"),
    ("val_loss", "val loss", "loss"),
    ("train_accuracy", "train accuracy", "acc"),
    ("train_loss", "train loss", "loss"),
    ("best_val_loss", "best val loss", "loss"),
    ("best_val_loss_step", "at step", "int"),
    ("num_parameters", "parameters", "int"),
    ("steps", "steps", "int"),
    ("epochs_completed", "epochs", ""),
    ("early_stop_step", "early stop at step", "int"),
    ("wall_time_s", "wall time", "s"),
]


def _metrics_table(runs: Sequence[Run], labels: Sequence[str]) -> Raw:
    headers = ["run"] + [label for _, label, _ in METRIC_COLUMNS]
    rows = []
    for run, label in zip(runs, labels):
        m = run.metrics
        rows.append([label] + [_fmt(m.get(key), kind) for key, _, kind in METRIC_COLUMNS])
    table = _table(headers, rows, numeric=range(1, len(headers)), cls="metrics")
    notes = []
    for run, label in zip(runs, labels):
        if run.metrics.get("interrupted"):
            notes.append(f"{label} was interrupted; its numbers are those of the last completed step.")
    return Raw(table + "".join(f'<p class="note">{esc(n)}</p>' for n in notes))


def _config_table(runs: Sequence[Run], labels: Sequence[str]) -> Raw:
    flats = [_flat_config(r.config) for r in runs]
    keys: list[str] = []
    for f in flats:
        keys += [k for k in f if k not in keys]
    rows, classes = [], []
    for key in keys:
        values = [_fmt(f.get(key, "(default)")) for f in flats]
        rows.append([key] + values)
        classes.append("differs" if len(runs) > 1 and len(set(values)) > 1 else "")
    note = ('<p class="sub">Rows where the runs differ are highlighted. A value shown as (default) is '
            "left to mlpkit's default in config.toml.</p>" if len(runs) > 1 else "")
    return Raw(note + _table(["key"] + list(labels), rows, row_classes=classes, cls="config"))


def _machine(env: dict[str, Any]) -> str:
    parts = [env.get("platform") or "", env.get("processor") or env.get("machine") or ""]
    if env.get("cpu_count"):
        parts.append(f"{env['cpu_count']} CPUs")
    return ", ".join(p for p in parts if p) or "(not recorded)"


def _blas(env: dict[str, Any]) -> str:
    libs = env.get("blas") or []
    return "; ".join(f"{b.get('internal_api', '?')} {b.get('version', '')} ({b.get('num_threads', '?')} threads, "
                     f"{b.get('architecture', '?')})" for b in libs) or "(not recorded)"


def _environment_table(runs: Sequence[Run], labels: Sequence[str]) -> Raw:
    rows = []
    for run, label in zip(runs, labels):
        e = run.environment
        rows.append([label, _fmt(run.metrics.get("wall_time_s"), "s"), _machine(e), _blas(e),
                     _fmt(e.get("threads") or "all"), e.get("python", "\u2013"), e.get("numpy", "\u2013"),
                     e.get("mlpkit", "\u2013"), _fmt(e.get("seed", run.config.get("seed"))),
                     e.get("started", "\u2013"), str(run.path)])
    return _table(["run", "wall time", "machine", "BLAS", "threads", "Python", "NumPy", "mlpkit", "seed",
                   "started", "folder"], rows, numeric=[1], cls="environment")


def _curves(runs: Sequence[Run], labels: Sequence[str], assets: Assets, *, prefix: str = "",
            title: str = "") -> Raw:
    series = [(label, _history(run), run.metrics) for run, label in zip(runs, labels)]
    head = f"{title}: " if title else ""
    loss = comparison_figure(series, assets.path(f"{prefix}loss"), kind="loss", title=f"{head}cross-entropy loss")
    acc = comparison_figure(series, assets.path(f"{prefix}accuracy"), kind="accuracy", title=f"{head}accuracy")
    stops = [f"{label} at step {run.metrics['early_stop_step']:,}" for run, label in zip(runs, labels)
             if run.metrics.get("early_stop_step")]
    stop_text = (" Early stopping (dotted line): " + "; ".join(stops) + ".") if stops else \
        " Early stopping did not fire."
    loss_cap = (f"Training loss: mean of each window of {SMOOTH_WINDOW} steps with a \u00b11 std band; validation "
                f"loss as a solid line.{stop_text}")
    acc_cap = "Training accuracy dashed, validation accuracy solid, measured at every validation check."
    return Raw(assets.figure(loss, alt=f"{head}loss against gradient step", caption=loss_cap)
               + assets.figure(acc, alt=f"{head}accuracy against gradient step", caption=acc_cap))


def _confusion_table(cm: np.ndarray) -> Raw:
    k = cm.shape[0]
    rows = [[f"true {i}"] + [str(int(v)) for v in cm[i]] + [str(int(cm[i].sum()))] for i in range(k)]
    rows.append(["all"] + [str(int(v)) for v in cm.sum(axis=0)] + [str(int(cm.sum()))])
    return Raw(f'<details><summary>the counts as a table</summary><div data-total="{int(cm.sum())}">'
               + _table(["", *[f"pred {j}" for j in range(k)], "total"], rows, numeric=range(1, k + 2),
                        cls="confusion") + "</div></details>")


def _run_sections(k: int, run: Run, label: str, assets: Assets) -> str:
    parts: list[str] = []
    tag = f"{k:02d}-{label}"
    pred = run.predictions()
    if pred is None:
        missing = Raw('<p class="note">This run folder has no predictions.npz, so there is nothing to show.</p>')
        for sid, title in zip(RUN_SECTIONS, ("Confusion matrix", "Per-class accuracy", "Most-confused digit pairs",
                                             "Misclassified validation digits")):
            parts.append(_section(f"{sid}-{k}", title, missing, level=3))
    else:
        y_true, y_pred, proba = pred["y_true"], pred["y_pred"], pred["proba"]
        n_classes = int(max(proba.shape[1] if proba.ndim == 2 else 0, y_true.max() + 1, y_pred.max() + 1))
        cm = confusion_matrix(y_true, y_pred, n_classes)
        acc = per_class_accuracy(cm)
        fig = confusion_figure(cm, assets.path(f"{tag}-confusion"),
                               title=f"{label}: confusion matrix ({len(y_true):,} validation images)")
        left = _section(f"confusion-{k}", "Confusion matrix",
                        assets.figure(fig, alt=f"{label} confusion matrix", size="small",
                                      caption="Rows: true digit (with its accuracy); columns: predicted digit. "
                                              "Cell colour is the share of the row (square-root scale).")
                        + _confusion_table(cm), level=3)
        rows = [[str(i), f"{int(cm[i].sum()):,}", f"{int(cm[i, i]):,}",
                 _fmt(float(a), "acc") if np.isfinite(a) else "\u2013"] for i, a in enumerate(acc)]
        worst = int(np.nanargmin(acc)) if np.isfinite(acc).any() else None
        note = (f'<p class="sub">Hardest digit: {worst} ({acc[worst]:.2%} correct).</p>' if worst is not None else "")
        right = _section(f"per-class-{k}", "Per-class accuracy",
                         note + _table(["digit", "images", "correct", "accuracy"], rows, numeric=[1, 2, 3],
                                       cls="per-class"), level=3)
        pairs = most_confused_pairs(cm, CONFUSED_PAIRS)
        errors = int(cm.sum() - np.trace(cm))
        rows = [[str(t), str(p), f"{n:,}", f"{n / max(int(cm[t].sum()), 1):.2%}", f"{n / max(errors, 1):.1%}"]
                for t, p, n in pairs]
        content = (_table(["true", "predicted as", "count", "share of the true digit", "share of all errors"], rows,
                          numeric=[2, 3, 4], cls="pairs") if pairs else Raw('<p class="note">No mistakes.</p>'))
        right += _section(f"confused-pairs-{k}", "Most-confused digit pairs",
                          Raw(f'<p class="sub">{errors:,} of {int(cm.sum()):,} validation images are misclassified.'
                              "</p>") + content, level=3)
        parts.append(f'<div class="pair"><div>{left}</div><div>{right}</div></div>')
        parts.append(_section(f"gallery-{k}", "Misclassified validation digits", _gallery(pred, label, tag, assets),
                              level=3))
    parts.append(_section(f"weights-{k}", "First-layer weights", _weights(run, label, tag, assets), level=3))
    return _section(f"run-{k}", f"Run {k}: {label}",
                    Raw(f'<p class="sub">{esc(run.config.get("description", ""))} \u2014 folder {esc(run.path)}</p>'
                        + "".join(parts)))


def _gallery(pred: dict[str, np.ndarray], label: str, tag: str, assets: Assets) -> Raw:
    index = pred.get("misclassified_index")
    images = pred.get("misclassified_images")
    if index is None or images is None or len(index) == 0:
        return Raw('<p class="note">No misclassified images were saved for this run.</p>')
    index, images = index[:GALLERY_SIZE], images[:GALLERY_SIZE]
    y_true, y_pred = pred["y_true"][index], pred["y_pred"][index]
    conf = pred["proba"][index, y_pred]
    cells = []
    for img, t, p, c, i in zip(images, y_true, y_pred, conf, index):
        data = base64.b64encode(encode_png_gray(255 - np.asarray(img, dtype=np.uint8))).decode("ascii")
        cells.append(f'<figure class="digit" data-true="{int(t)}" data-pred="{int(p)}" data-confidence="{c:.4f}">'
                     f'<img src="data:image/png;base64,{data}" alt="validation image {int(i)}: true {int(t)}, '
                     f'predicted {int(p)}"><figcaption>true {int(t)} \u2192 <span class="pred">{int(p)}</span>'
                     f"<br>{c:.1%}</figcaption></figure>")
    fig = gallery_figure(images, y_true, y_pred, conf, assets.path(f"{tag}-misclassified"),
                         title=f"{label}: most confident mistakes (true\u2192predicted, confidence)")
    assets.written += fig
    links = " \u00b7 ".join(f'<a href="{esc(assets.folder.name + "/" + p.name)}">{p.suffix[1:].upper()}</a>'
                            for p in fig)
    return Raw(f'<p class="sub">The {len(index)} misclassified validation digits the network was most sure about, '
               f"most confident first: true label \u2192 predicted label, and the probability given to the "
               f"predicted label. As one figure: [{links}]</p>"
               f'<div class="gallery">{"".join(cells)}</div>')


def _weights(run: Run, label: str, tag: str, assets: Assets) -> Raw:
    if not (run.path / "weights.npz").exists():
        return Raw('<p class="note">This run folder has no weights.npz.</p>')
    try:
        weights = run.weights()
    except Exception as exc:
        raise MlpkitError(f"{run.path / 'weights.npz'} is unreadable: {type(exc).__name__}: {exc}") from None
    first = weights.get("layers.0.weight")
    images = pixel_weights(first) if first is not None else None
    if images is None:
        shape = None if first is None else tuple(first.shape)
        return Raw(f'<p class="note">The first layer ({esc(shape)}) does not take 28x28 images; nothing to draw.</p>')
    fig = weights_figure(images, assets.path(f"{tag}-weights"),
                         title=f"{label}: first-layer weights of {len(images)} hidden units (red +, blue \u2212)")
    extra = f" (the first 128 of {len(images)})" if len(images) > 128 else ""
    return assets.figure(fig, alt=f"{label} first-layer weights as images", size="medium",
                         caption=f"Each tile is one hidden unit's 784 input weights as a 28x28 image{extra}, scaled "
                                 "to its own largest |w|: what the unit looks for (red) and against (blue).")


# ------------------------------------------------------------------ run report
def build_report(run_dirs: Sequence[Path], out: Path, *, title: str | None = None) -> Path:
    """Write a self-contained HTML report of one or several run folders to ``out``; return ``out``.

    Figures also land as PNG and SVG in ``<out-stem>_files/``. A missing or broken run folder
    is an :class:`~mlpkit.core.errors.MlpkitError` raised before anything is written.
    """
    if not run_dirs:
        raise MlpkitError("report needs at least one run folder")
    runs = [load_run(Path(d)) for d in run_dirs]
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise MlpkitError(f"report output {out} must end in .html")
    labels = _labels(runs)
    assets = Assets(out)
    title = title or ("mlpkit report: " + ", ".join(labels) if len(labels) <= 4 else f"mlpkit report: {len(labels)} runs")
    body = [
        _section("metrics", "Final metrics", _metrics_table(runs, labels)),
        _section("config", "Configuration" + (" side by side" if len(runs) > 1 else ""), _config_table(runs, labels)),
        _section("curves", "Loss and accuracy against the gradient step", _curves(runs, labels, assets)),
        _section("environment", "Wall time and machine", _environment_table(runs, labels)),
    ]
    body += [_run_sections(k, run, label, assets) for k, (run, label) in enumerate(zip(runs, labels), start=1)]
    nav = [("metrics", "Final metrics"), ("config", "Configuration"), ("curves", "Curves"),
           ("environment", "Wall time and machine")]
    nav += [(f"run-{k}", f"Run {k}: {label}") for k, label in enumerate(labels, start=1)]
    subtitle = f"{len(runs)} run{'s' if len(runs) > 1 else ''}: " + ", ".join(str(r.path) for r in runs)
    atomic_write_text(out, _page(title, subtitle, nav, "".join(body)))
    return out


# ------------------------------------------------------------------ seed report
#: What the seed report states (TDT4265 assignment 2, group 66), transcribed from its text.
SEED_DATA = {"mean": 33.55274553571429, "std": 78.87550070784701}
SEED_STATED: dict[str, dict[str, float]] = {
    "task2c": {"num_parameters": 50880},
    "task3c": {"val_accuracy": 0.96, "val_loss": 0.15, "train_loss": 0.002, "train_accuracy": 1.0},
    "task4a": {"val_accuracy": 0.94, "val_loss": 0.22, "train_loss": 0.022, "train_accuracy": 0.99},
    "task4b": {"val_accuracy": 0.97, "val_loss": 0.12, "train_loss": 0.0008, "train_accuracy": 1.0},
    "task4d": {"val_accuracy": 0.96, "val_loss": 0.16, "train_loss": 0.0008, "train_accuracy": 1.0,
               "num_parameters": 50386},
    "task4e": {"val_accuracy": 0.97, "val_loss": 0.23, "train_loss": 0.07, "train_accuracy": 0.94,
               "early_stop_epoch": 20},
}
REFERENCE_KEYS = ("val_accuracy", "val_loss", "train_loss", "train_accuracy", "early_stop_epoch")


@dataclass(frozen=True)
class SeedTask:
    """One task of the seed report: which presets our figure overlays, which one is measured."""

    key: str
    title: str
    quote: str
    overlay: tuple[str, ...] = ()
    main: str | None = None
    baseline: str | None = None  # the run the report's qualitative claim compares against
    metrics: tuple[str, ...] = ("val_accuracy", "val_loss", "train_accuracy", "train_loss")


SEED_TASKS: tuple[SeedTask, ...] = (
    SeedTask("2a", "Task 2a) Normalization: mean and standard deviation",
             "The mean is \u03bc: 33.55274553571429 and the standard deviation is \u03c3: 78.87550070784701.",
             metrics=()),
    SeedTask("2c", "Task 2c) Baseline training (and without shuffling)",
             "Loss and accuracy of the baseline network, shown as plots only.",
             overlay=("task2c", "task2c-noshuffle"), main="task2c"),
    SeedTask("2d", "Task 2d) Parameter count",
             "Our parameters in this case are 785 * 64 + 64 * 10 = 50880.", main="task2c", metrics=()),
    SeedTask("3a", "Task 3a) Improved weight initialization",
             "In the modified model the validation loss is significantly lower compared to the base model.",
             overlay=("task2c", "task3a"), main="task3a", baseline="task2c"),
    SeedTask("3b", "Task 3b) Improved sigmoid with improved weights",
             "The validation loss is significantly lower compared to the base model ... we notice a faster "
             "convergence.", overlay=("task2c", "task3a", "task3b"), main="task3b", baseline="task3a"),
    SeedTask("3c", "Task 3c) Momentum with improved sigmoid and weights (the reference for task 4)",
             "The default model with 1 hidden layer and 64 hidden units has a validation loss of around 0.15 and a "
             "training loss of around 0.002. The accuracy is 0.96 and 1.0 respectively.",
             overlay=("task2c", "task3a", "task3b", "task3c"), main="task3c", baseline="task3b"),
    SeedTask("4a", "Task 4a) 32 hidden units",
             "For 32 hidden units, the validation loss is around 0.22 and the training loss is around 0.022. "
             "The accuracy is 0.94 and 0.99 respectively.", overlay=("task3c", "task4a"), main="task4a"),
    SeedTask("4b", "Task 4b) 128 hidden units",
             "For 128 hidden units, the validation loss is around 0.12 and the training loss is around 0.0008. "
             "The accuracy is 0.97 and 1.0 respectively.", overlay=("task3c", "task4b"), main="task4b"),
    SeedTask("4d", "Task 4d) Two hidden layers of 59 (about as many parameters as task 3)",
             "785*59 + 59*59 + 59*10 = 50386. The validation loss is around 0.16 and the training loss is around "
             "0.0008. The accuracy is 0.96 and 1.0 respectively.",
             overlay=("task3c", "task4b", "task4d"), main="task4d",
             metrics=("num_parameters", "val_accuracy", "val_loss", "train_accuracy", "train_loss")),
    SeedTask("4e", "Task 4e) Ten hidden layers of 64",
             "We trained for 25 epochs, although early stopping kicked in at 20. The validation loss is around 0.23 "
             "and the training loss is around 0.07. The accuracy is 0.97 and 0.94 respectively.",
             overlay=("task3c", "task4e"), main="task4e",
             metrics=("val_accuracy", "val_loss", "train_accuracy", "train_loss", "early_stop_epoch")),
)

METRIC_NAMES = {"val_accuracy": "validation accuracy", "val_loss": "validation loss",
                "train_accuracy": "training accuracy", "train_loss": "training loss",
                "num_parameters": "parameter count", "early_stop_epoch": "early-stopping epoch",
                "mean": "pixel mean", "std": "pixel standard deviation"}
METRIC_KIND = {"val_accuracy": "acc", "train_accuracy": "acc", "val_loss": "loss", "train_loss": "loss",
               "num_parameters": "int", "early_stop_epoch": "epoch", "mean": "full", "std": "full"}


@dataclass
class Comparison:
    """Our value of one metric next to the report's, with a verdict."""

    metric: str
    ours: float | None
    stated: float | None
    verdict: str = ""  # "matches", "higher", "lower", "not stated", "missing"
    detail: str = ""


def compare(metric: str, ours: float | None, stated: float | None) -> Comparison:
    """Judge ``ours`` against a number the report states (rounded, "around ...").

    Accuracies match within 0.01 (the report gives two decimals); losses within 25% or 0.005
    (the report gives one or two significant digits); counts exactly; the early-stopping epoch
    within 3 epochs; the normalization statistics within a relative 1e-9.
    """
    c = Comparison(metric, ours, stated)
    if stated is None:
        c.verdict = "not stated"
        return c
    if ours is None or (isinstance(ours, float) and not math.isfinite(ours)):
        c.verdict = "missing"
        c.detail = f"ours is {ours}" if ours is not None else (
            "early stopping did not fire" if metric == "early_stop_epoch" else "we have no value")
        return c
    diff = float(ours) - float(stated)
    if metric.endswith("accuracy"):
        close = abs(diff) <= 0.01 + 1e-12
        c.detail = f"{abs(diff) * 100:.1f} percentage points {'above' if diff > 0 else 'below'}"
    elif metric.endswith("loss"):
        close = abs(diff) <= max(0.25 * abs(stated), 0.005)
        c.detail = f"{abs(ours / stated - 1):.0%} {'above' if diff > 0 else 'below'}" if stated else ""
    elif metric == "num_parameters":
        close = int(ours) == int(stated)
        c.detail = f"{abs(int(diff)):,} {'more' if diff > 0 else 'fewer'}"
    elif metric == "early_stop_epoch":
        close = abs(diff) <= 3
        c.detail = f"{abs(diff):.1f} epochs {'later' if diff > 0 else 'earlier'}"
    else:
        close = abs(diff) <= 1e-9 * max(abs(float(stated)), 1.0)
        c.detail = f"relative difference {abs(diff) / max(abs(float(stated)), 1e-300):.1e}"
    c.verdict = "matches" if close else ("higher" if diff > 0 else "lower")
    if close and diff == 0:
        c.detail = "equal"
    return c


def _verdict_cell(c: Comparison) -> Raw:
    if c.verdict == "matches":
        return Raw(f'<span class="ok">matches</span> ({esc(c.detail)})' if c.detail else '<span class="ok">matches</span>')
    if c.verdict in ("higher", "lower"):
        return Raw(f'<span class="off">{c.verdict}</span> ({esc(c.detail)})')
    return Raw(esc(c.verdict) + (f" ({esc(c.detail)})" if c.detail else ""))


def _comparison_table(comparisons: Sequence[Comparison]) -> Raw:
    rows = [[METRIC_NAMES.get(c.metric, c.metric), _fmt(c.ours, METRIC_KIND.get(c.metric, "")),
             _fmt(c.stated, METRIC_KIND.get(c.metric, "")) if c.stated is not None else "(plot only)",
             _verdict_cell(c)] for c in comparisons]
    return _table(["", "ours", "the report's", "comparison"], rows, numeric=[1, 2], cls="seed-numbers")


def _sentence(comparisons: Sequence[Comparison]) -> str:
    """One generated sentence: where our numbers land relative to the report's."""
    judged = [c for c in comparisons if c.verdict in ("matches", "higher", "lower")]
    if not judged:
        return ""
    off = [c for c in judged if c.verdict != "matches"]
    if not off:
        return (f"All {len(judged)} of our numbers land where the report's do "
                f"({', '.join(METRIC_NAMES.get(c.metric, c.metric) for c in judged)}).")
    parts = [f"our {METRIC_NAMES.get(c.metric, c.metric)} {_fmt(c.ours, METRIC_KIND.get(c.metric, ''))} is "
             f"{c.verdict} than the report's {_fmt(c.stated, METRIC_KIND.get(c.metric, ''))} ({c.detail})" for c in off]
    agree = len(judged) - len(off)
    return (f"{agree} of {len(judged)} numbers match the report; " + "; ".join(parts) + ".")


def _steps_to(history: dict[str, Any], key: str, threshold: float) -> int | None:
    """The first validation step at which ``key`` reached ``threshold`` (None if never)."""
    val = history.get("validation", {})
    for step, value in zip(val.get("step", []), val.get(key, [])):
        if value is not None and value >= threshold:
            return int(step)
    return None


def _claim(task: SeedTask, runs: dict[str, Run]) -> str:
    """Check the report's qualitative claim (lower validation loss, faster convergence)."""
    if not task.baseline or task.main not in runs or task.baseline not in runs:
        return ""
    a, b = runs[task.main].metrics, runs[task.baseline].metrics
    ours, base = a.get("val_loss"), b.get("val_loss")
    if ours is None or base is None:
        return ""
    lower = ours < base
    text = (f"{task.main}'s final validation loss {ours:.4g} is {'lower' if lower else 'not lower'} than "
            f"{task.baseline}'s {base:.4g}{', as the report says' if lower else ', unlike what the report says'}.")
    threshold = 0.90
    s_main = _steps_to(_history(runs[task.main]), "val_accuracy", threshold)
    s_base = _steps_to(_history(runs[task.baseline]), "val_accuracy", threshold)
    if s_main is not None or s_base is not None:
        def at(s: int | None) -> str:
            return f"step {s:,}" if s is not None else "never"

        faster = s_main is not None and (s_base is None or s_main < s_base)
        same = s_main is not None and s_main == s_base
        speed = "sooner" if faster else ("at the same step" if same else "later")
        text += (f" It reaches {threshold:.0%} validation accuracy {speed} ({at(s_main)}) than {task.baseline} "
                 f"({at(s_base)}).")
    return text


def _reference(summary: dict[str, Any], preset: str) -> dict[str, Any]:
    """The report's numbers for ``preset``: summary.json's reference over our transcription."""
    stated: dict[str, Any] = dict(SEED_STATED.get(preset, {}))
    ref = (summary.get("presets", {}).get(preset) or {}).get("reference") or {}
    for key in REFERENCE_KEYS:
        if ref.get(key) is not None:
            stated[key] = ref[key]
    return stated


def _our_value(run: Run, metric: str) -> float | None:
    m = run.metrics
    if metric == "early_stop_epoch":
        return _epoch_of(m, m.get("early_stop_step"))
    return m.get(metric)


def preset_overrides(run: Run) -> list[str]:
    """``key=value`` for every setting in which ``run`` departs from the shipped preset of its
    name (empty when the name is not a preset): the reason numbers may not match the report."""
    import tomllib
    from importlib import resources

    from mlpkit.runs.config import from_dict
    from mlpkit.seed.presets import preset_names

    name = run.config.get("name")
    if name not in preset_names():
        return []
    text = resources.files("mlpkit.seed").joinpath("presets").joinpath(f"{name}.toml").read_text(encoding="utf-8")
    preset = _flat_config(from_dict(tomllib.loads(text)).to_dict())
    try:
        ours = _flat_config(from_dict(run.config).to_dict())
    except MlpkitError:
        ours = _flat_config(run.config)
    keys = [k for k in {**preset, **ours} if k not in ("name", "description")]
    return [f"{k}={_fmt(ours.get(k))}" for k in keys if ours.get(k) != preset.get(k)]


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


@dataclass
class _SeedContext:
    summary: dict[str, Any]
    runs: dict[str, Run]
    assets: Assets
    missing: dict[str, str] = field(default_factory=dict)
    figures: dict[tuple[str, ...], Raw] = field(default_factory=dict)


def _seed_task_section(task: SeedTask, ctx: _SeedContext) -> str:
    parts = [f"<blockquote>The report: \u201c{esc(task.quote)}\u201d</blockquote>"]
    comparisons: list[Comparison] = []
    extra = ""
    if task.key == "2a":
        data = ctx.summary.get("data") or {}
        comparisons = [compare(k, data.get(k), SEED_DATA[k]) for k in ("mean", "std")]
        if data.get("n_train") is not None:
            extra = (f" Our statistics come from {data['n_train']:,} training images and are applied to all "
                     f"{data.get('n_val', 0):,} validation images as well.")
    else:
        present = [p for p in task.overlay if p in ctx.runs]
        absent = [p for p in (task.overlay or (task.main,)) if p not in ctx.runs]
        if absent:
            parts.append(f'<p class="note">Not in this reproduce folder: {esc(", ".join(absent))}'
                         + "".join(f" ({esc(ctx.missing[p])})" for p in absent if p in ctx.missing) + ".</p>")
        if present:
            key = tuple(present)
            if key not in ctx.figures:  # tasks overlaying the same runs share one pair of figures
                ctx.figures[key] = _curves([ctx.runs[p] for p in present], present, ctx.assets,
                                           prefix=f"task{task.key}-", title=" vs ".join(present))
            parts.append(ctx.figures[key])
        if task.main in ctx.runs:
            run = ctx.runs[task.main]
            changed = preset_overrides(run)
            if changed:
                parts.append(f'<p class="note">{esc(task.main)} ran with settings that differ from the preset '
                             f'({esc(", ".join(changed))}), so its numbers need not land where the report\'s do.</p>')
            stated = _reference(ctx.summary, task.main)
            metrics = task.metrics if task.key != "2d" else ("num_parameters",)
            comparisons = [compare(k, _our_value(run, k), stated.get(k)) for k in metrics]
            if task.key == "2d":
                hidden = run.config.get("model", {}).get("hidden", [64])
                extra = (f" {task.main} has hidden layers {list(hidden)} and 10 outputs; mlpkit counts every weight "
                         "including the input bias column.")
            if task.key == "2c" and "task2c-noshuffle" in ctx.runs:
                ns = ctx.runs["task2c-noshuffle"].metrics
                extra = (f" Without shuffling (task2c-noshuffle) training ends at validation loss "
                         f"{_fmt(ns.get('val_loss'), 'loss')} and accuracy {_fmt(ns.get('val_accuracy'), 'acc')}, "
                         f"against {_fmt(run.metrics.get('val_loss'), 'loss')} and "
                         f"{_fmt(run.metrics.get('val_accuracy'), 'acc')} with shuffling.")
            if task.key == "4e":
                stop = run.metrics.get("early_stop_step")
                extra += (f" Early stopping fired at step {stop:,} (epoch {_epoch_of(run.metrics, stop):.1f})."
                          if stop else " Early stopping did not fire in our run.")
    sentence = " ".join(s for s in (_sentence(comparisons), _claim(task, ctx.runs), extra.strip()) if s)
    if comparisons:
        parts.append(_comparison_table(comparisons))
    if sentence:
        parts.append(f'<p class="verdict">{esc(sentence)}</p>')
    return _section(f"task-{task.key}", task.title, "".join(parts))


def _seed_overview(ctx: _SeedContext) -> Raw:
    rows = []
    for name, entry in ctx.summary.get("presets", {}).items():
        run = ctx.runs.get(name)
        m = run.metrics if run else (entry or {}).get("metrics") or {}
        stated = _reference(ctx.summary, name)
        note = ((entry or {}).get("reference") or {}).get("note") or ""
        rows.append([name, _fmt(m.get("val_accuracy"), "acc"), _fmt(stated.get("val_accuracy"), "acc"),
                     _fmt(m.get("val_loss"), "loss"), _fmt(stated.get("val_loss"), "loss"),
                     _fmt(m.get("train_loss"), "loss"), _fmt(stated.get("train_loss"), "loss"),
                     _fmt(m.get("num_parameters"), "int"), _fmt(m.get("early_stop_step"), "int"),
                     _fmt(m.get("wall_time_s"), "s"), note])
    table = _table(["preset", "val acc", "report", "val loss", "report", "train loss", "report", "parameters",
                    "early stop step", "wall time", "note"], rows, numeric=range(1, 10), cls="overview")
    checks = ctx.summary.get("checks") or []
    if checks:
        rows = [[c.get("check", ""), _fmt(c.get("value")),
                 Raw('<span class="ok">passed</span>' if c.get("passed") else '<span class="off">failed</span>')]
                for c in checks]
        table += Raw("<h3>Acceptance checks of mlpkit reproduce</h3>"
                     + _table(["check", "value", "result"], rows, cls="checks"))
    return Raw(table)


def _common_overrides(runs: dict[str, Run]) -> str:
    """The preset departures of each run, grouped (``none`` when every run is its preset)."""
    groups: dict[str, list[str]] = {}
    for name, run in runs.items():
        changed = ", ".join(preset_overrides(run))
        if changed:
            groups.setdefault(changed, []).append(name)
    if not groups:
        return "none: every run is its preset as shipped"
    if len(groups) == 1 and sum(len(v) for v in groups.values()) == len(runs):
        return next(iter(groups)) + " (all runs)"
    return "; ".join(f"{', '.join(v)}: {k}" for k, v in groups.items())


def build_seed_report(reproduce_dir: Path, out: Path) -> Path:
    """Write the HTML report that follows the seed report task by task (2a ... 4e) from the
    folder ``mlpkit reproduce --out DIR`` fills (``DIR/summary.json`` and one run folder per
    preset); return ``out``. Presets that are missing get a note, not an error."""
    reproduce_dir = Path(reproduce_dir)
    out = Path(out)
    summary = _read_summary(reproduce_dir)
    runs: dict[str, Run] = {}
    missing: dict[str, str] = {}
    for name, entry in summary.get("presets", {}).items():
        run_dir = reproduce_dir / str((entry or {}).get("run_dir") or name)
        try:
            runs[name] = load_run(run_dir)
        except MlpkitError as exc:
            missing[name] = str(exc)
    ctx = _SeedContext(summary=summary, runs=runs, assets=Assets(out), missing=missing)
    env = next(iter(runs.values())).environment if runs else {}
    data = summary.get("data") or {}
    wall = summary.get("wall_time_s")
    intro = ('<p>Each section below is one task of the seed report (TDT4265, assignment 2): what the report says, '
             "our figure, our numbers next to the report's, and a generated sentence on how they compare. "
             "Numbers need not equal the report's to the digit (its random draws are unknown) but should land in "
             "the same place.</p>"
             + _table(None, [["data", f"{_fmt(data.get('n_train'), 'int')} training images, "
                                          f"{_fmt(data.get('n_val'), 'int')} validation images"],
                                 ["total wall time", _fmt(wall, "s") if wall is not None else "\u2013"],
                                 ["machine", _machine(env)], ["BLAS", _blas(env)],
                                 ["mlpkit / NumPy / Python", f"{env.get('mlpkit', __version__)} / "
                                                             f"{env.get('numpy', '?')} / {env.get('python', '?')}"],
                                 ["folder", str(reproduce_dir)],
                                 ["settings changed from the presets", _common_overrides(runs)]], cls="about"))
    body = [_section("overview", "Overview: every preset", Raw(intro + _seed_overview(ctx)))]
    body += [_seed_task_section(task, ctx) for task in SEED_TASKS]
    nav = [("overview", "Overview")] + [(f"task-{t.key}", f"Task {t.key}") for t in SEED_TASKS]
    atomic_write_text(out, _page("mlpkit reproduces the seed report", f"from {reproduce_dir}", nav, "".join(body)))
    return out


def seed_task_keys() -> list[str]:
    """The task keys the seed report follows, in order ("2a", "2c", ...)."""
    return [t.key for t in SEED_TASKS]


__all__ = ["build_report", "build_seed_report", "compare", "seed_task_keys", "REPORT_SECTIONS", "RUN_SECTIONS",
           "SEED_TASKS", "SEED_STATED", "SEED_DATA"]

