"""summary.md of a reproduce folder: our numbers beside the report's, the acceptance checks and
the comparison figures, from the summary.json that ``mlpkit reproduce`` writes."""

from __future__ import annotations

from typing import Any

from mlpkit.seed.reference import data_stats, note, stated
from mlpkit.seed.seed_stats import seeds_markdown

#: The report's numbers written beside ours in summary.json (per preset), in this order.
SUMMARY_REFERENCE_KEYS = ("val_accuracy", "val_loss", "train_loss", "train_accuracy", "early_stop_epoch")


def reference_entry(preset: str) -> dict[str, Any]:
    """summary.json's ``reference`` block of ``preset``: the report's numbers (None where it states
    none) and the preset's label."""
    numbers = stated(preset)
    return {**{k: numbers.get(k) for k in SUMMARY_REFERENCE_KEYS}, "note": note(preset)}


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 0.01 else f"{value:.{digits}f}"
    return str(value)


def summary_markdown(summary: dict[str, Any]) -> str:
    """The text of summary.md for ``summary`` (the content of summary.json)."""
    d = summary["data"]
    report = data_stats()
    lines = [
        "# mlpkit reproduce: the seed report's experiments",
        "",
        f"Training set {d['n_train']} images, validation set {d['n_val']} images.",
        f"Normalization: mean {d['mean']!r} (report {report['mean']!r}), std {d['std']!r} (report {report['std']!r}).",
        f"Total wall time: {summary['wall_time_s']:.1f} s.",
        "",
        (
            "Ours = final weights after training (whole training set for train loss/accuracy);"
            " report = the numbers the seed report states."
        ),
        "",
        (
            "| preset | params | train loss (ours / report) | train acc | val loss (ours / report)"
            " | val acc (ours / report) | best val loss @ step | early stop step (epoch) | wall s |"
        ),
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, entry in summary["presets"].items():
        m, r = entry["metrics"], entry["reference"]
        stop = m["early_stop_step"]
        stop_txt = f"{stop} ({stop / m['steps_per_epoch']:.1f})" if stop else "–"
        if r.get("early_stop_epoch"):
            stop_txt += f" / report ~{r['early_stop_epoch']}"
        lines.append(
            f"| {name} | {m['num_parameters']} | {_fmt(m['train_loss'])} / {_fmt(r.get('train_loss'))} "
            f"| {_fmt(m['train_accuracy'])} / {_fmt(r.get('train_accuracy'))} "
            f"| {_fmt(m['val_loss'])} / {_fmt(r.get('val_loss'))} "
            f"| {_fmt(m['val_accuracy'])} / {_fmt(r.get('val_accuracy'))} "
            f"| {_fmt(m['best_val_loss'])} @ {m['best_val_loss_step']} | {stop_txt} | {m['wall_time_s']:.1f} |"
        )
    lines += ["", "## Acceptance checks", ""]
    for c in summary["checks"]:
        value = c["value"]
        shown = " vs ".join(_fmt(v) for v in value) if isinstance(value, list) else _fmt(value)
        lines.append(f"- {'PASS' if c['passed'] else 'FAIL'}: {c['check']} (ours: {shown})")
    lines += ["", "## Figures", ""]
    for comp in summary["comparisons"]:
        lines.append(f"### {comp['title']}")
        lines += [f"![{comp['name']}]({f})" for f in comp["figures"] if f.endswith(".png")]
        lines.append("")
    if summary.get("seeds"):
        lines += seeds_markdown(summary["seeds"])
    return "\n".join(lines) + "\n"
