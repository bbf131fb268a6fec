"""``mlpkit reproduce``: every experiment of the seed report, its comparison figures, and a
summary beside the numbers the report states."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Callable

from mlpkit.core.errors import ConfigError
from mlpkit.workflows.configs import preset_names, resolve_config
from mlpkit.workflows.experiment import data_key, experiment_data, run_experiment
from mlpkit.core.fileio import atomic_write_json, atomic_write_text
from mlpkit.report.plots import comparison_figure
from mlpkit.runs.folder import load_run

#: What the seed report states for each preset (None where it gives no number).
REFERENCE: dict[str, dict[str, Any]] = {
    "task2c": {"note": "baseline; plot only"},
    "task2c-noshuffle": {"note": "comparison plot only"},
    "task3a": {"note": "clearly lower validation loss than task2c"},
    "task3b": {"note": "lower again than task3a, converges faster"},
    "task3c": {"val_accuracy": 0.96, "val_loss": 0.15, "train_loss": 0.002, "train_accuracy": 1.0,
               "note": "all tricks; the reference for task 4"},
    "task4a": {"val_accuracy": 0.94, "val_loss": 0.22, "train_loss": 0.022, "train_accuracy": 0.99,
               "note": "32 hidden units"},
    "task4b": {"val_accuracy": 0.97, "val_loss": 0.12, "train_loss": 0.0008, "train_accuracy": 1.0,
               "note": "128 hidden units"},
    "task4d": {"val_accuracy": 0.96, "val_loss": 0.16, "train_loss": 0.0008, "train_accuracy": 1.0,
               "note": "two hidden layers of 59, 50,386 parameters"},
    "task4e": {"val_loss": 0.23, "train_loss": 0.07, "early_stop_epoch": 20,
               "note": "ten hidden layers of 64; the report also states accuracies 0.97 and 0.94"},
}
REPORT_MEAN, REPORT_STD = 33.55274553571429, 78.87550070784701

COMPARISONS = [
    ("task2c-3a-3b-3c", ["task2c", "task3a", "task3b", "task3c"], "Tricks of the trade (task 3)"),
    ("task3c-4a-4b", ["task3c", "task4a", "task4b"], "Hidden units: 64 vs 32 vs 128 (task 4a/4b)"),
    ("task3c-4d-4e", ["task3c", "task4d", "task4e"], "Depth: [64] vs [59,59] vs ten layers of 64 (task 4d/4e)"),
    ("task2c-shuffle", ["task2c", "task2c-noshuffle"], "Shuffling the training set (task 2c)"),
]

#: Acceptance bounds: (preset, metric, op, bound) and ordering checks on best validation loss.
CHECKS = [("task3c", "val_accuracy", ">=", 0.955), ("task4a", "val_accuracy", ">=", 0.940),
          ("task4b", "val_accuracy", ">=", 0.965), ("task4d", "val_accuracy", ">=", 0.955)]
ORDER_CHECKS = [("task3b", "task3a"), ("task3c", "task3a"), ("task3a", "task2c")]


def reproduce_all(out: str | Path, *, presets: list[str] | None = None, overrides: list[str] | None = None,
                  data_dir: str | Path | None = None, threads: int | None = None, progress: bool | None = None,
                  log: Callable[[str], None] = print) -> Path:
    """Run the presets (all by default) into ``out/<preset>``; write figures, summary.md/json, report.html."""
    out = Path(out)
    names = presets or list(REFERENCE)
    unknown = [n for n in names if n not in preset_names()]
    if unknown:
        raise ConfigError(f"unknown preset(s) {', '.join(unknown)}; valid: {', '.join(preset_names())}")
    extra = list(overrides or []) + ([f"train.threads={threads}"] if threads else [])
    configs = {n: resolve_config(n, extra) for n in names}  # all validated before any work
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    prepared: dict[tuple, Any] = {}
    for name, cfg in configs.items():
        key = data_key(cfg)
        if key not in prepared:
            prepared[key] = experiment_data(cfg, data_dir=data_dir)
        run_dir = out / name
        if run_dir.exists():
            shutil.rmtree(run_dir)
        log(f"[{name}] {cfg.description}")
        result = run_experiment(cfg, run_dir, data=prepared[key], progress=progress, log=log)
        m = result.metrics
        log(f"[{name}] val acc {m['val_accuracy']:.4f}  val loss {m['val_loss']:.4f}  train loss {m['train_loss']:.4f}"
            f"  early stop {m['early_stop_step']}  {m['wall_time_s']:.1f} s")
        if result.interrupted:
            log("interrupted: stopping the reproduction here")
            break
    wall = time.perf_counter() - start
    runs = {n: load_run(out / n) for n in names if (out / n / "metrics.json").exists()}
    comparisons = _comparison_figures(out, runs)
    first = next(iter(prepared.values()))
    summary = {
        "data": {"mean": first.mean, "std": first.std, "n_train": len(first.y_train), "n_val": len(first.y_val)},
        "wall_time_s": wall,
        "presets": {n: {"run_dir": n, "metrics": r.metrics, "reference": {
            k: REFERENCE.get(n, {}).get(k) for k in ("val_accuracy", "val_loss", "train_loss", "train_accuracy",
                                                     "early_stop_epoch", "note")}} for n, r in runs.items()},
        "comparisons": comparisons,
        "checks": _checks(runs),
    }
    atomic_write_json(out / "summary.json", summary)
    atomic_write_text(out / "summary.md", summary_markdown(summary))
    try:
        from mlpkit.report.html import build_seed_report
    except ImportError:  # pragma: no cover - report module not installed
        build_seed_report = None
    if build_seed_report is not None:
        log(f"report: {build_seed_report(out, out / 'report.html')}")
    return out / "summary.md"


def _comparison_figures(out: Path, runs: dict[str, Any]) -> list[dict[str, Any]]:
    done = []
    for name, members, title in COMPARISONS:
        present = [m for m in members if m in runs]
        if len(present) < 2:
            continue
        series = [(m, runs[m].history, runs[m].metrics) for m in present]
        figures = []
        for kind in ("loss", "accuracy"):
            for path in comparison_figure(series, out / "figures" / f"{name}-{kind}", kind=kind, title=title):
                figures.append(str(path.relative_to(out)))
        done.append({"name": name, "title": title, "presets": present, "figures": figures})
    return done


def _checks(runs: dict[str, Any]) -> list[dict[str, Any]]:
    results = []
    for preset, metric, op, bound in CHECKS:
        if preset in runs:
            value = runs[preset].metrics[metric]
            results.append({"check": f"{preset} {metric} {op} {bound}", "value": value, "passed": value >= bound})
    for better, worse in ORDER_CHECKS:
        if better in runs and worse in runs:
            a, b = runs[better].metrics["best_val_loss"], runs[worse].metrics["best_val_loss"]
            results.append({"check": f"best val loss {better} < {worse}", "value": [a, b], "passed": a < b})
    return results


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 0.01 else f"{value:.{digits}f}"
    return str(value)


def summary_markdown(summary: dict[str, Any]) -> str:
    d = summary["data"]
    lines = [
        "# mlpkit reproduce: the seed report's experiments",
        "",
        f"Training set {d['n_train']} images, validation set {d['n_val']} images.",
        f"Normalization: mean {d['mean']!r} (report {REPORT_MEAN!r}), std {d['std']!r} (report {REPORT_STD!r}).",
        f"Total wall time: {summary['wall_time_s']:.1f} s.",
        "",
        "Ours = final weights after training (whole training set for train loss/accuracy);"
        " report = the numbers the seed report states.",
        "",
        "| preset | params | train loss (ours / report) | train acc | val loss (ours / report) | val acc (ours / report)"
        " | best val loss @ step | early stop step (epoch) | wall s |",
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
            f"| {_fmt(m['val_loss'])} / {_fmt(r.get('val_loss'))} | {_fmt(m['val_accuracy'])} / {_fmt(r.get('val_accuracy'))} "
            f"| {_fmt(m['best_val_loss'])} @ {m['best_val_loss_step']} | {stop_txt} | {m['wall_time_s']:.1f} |")
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
    return "\n".join(lines) + "\n"
