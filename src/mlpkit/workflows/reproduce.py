"""``mlpkit reproduce``: every experiment of the seed report, its comparison figures, and a
summary beside the numbers the report states."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlpkit.core.errors import ConfigError
from mlpkit.core.fileio import atomic_write_json, atomic_write_text
from mlpkit.report.plots import comparison_figure
from mlpkit.runs.config import load_config, preset_names, with_overrides
from mlpkit.runs.folder import load_run
from mlpkit.seed.checks import COMPARISONS, run_checks
from mlpkit.seed.reference import data_stats, note, reference_presets, stated
from mlpkit.seed.report import build_seed_report
from mlpkit.workflows.experiment import data_key, prepare_data, run_experiment

#: The report's numbers written beside ours in summary.json (per preset), in this order.
SUMMARY_REFERENCE_KEYS = ("val_accuracy", "val_loss", "train_loss", "train_accuracy", "early_stop_epoch")


def _reference_entry(preset: str) -> dict[str, Any]:
    numbers = stated(preset)
    return {**{k: numbers.get(k) for k in SUMMARY_REFERENCE_KEYS}, "note": note(preset)}


def reproduce_all(out: str | Path, *, presets: list[str] | None = None, overrides: list[str] | None = None,
                  data_dir: str | Path | None = None, threads: int | None = None, progress: bool | None = None,
                  log: Callable[[str], None] = print) -> Path:
    """Run the seed report's experiments and write what compares them with the report.

    Parameters
    ----------
    out : path
        The reproduce folder: one run folder per preset (``out/<preset>``), comparison figures
        in ``out/figures``, ``summary.md``, ``summary.json`` and the seed report ``report.html``.
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
    log : callable
        Receives one line of text per event.

    Returns
    -------
    Path
        ``out/summary.md``.

    Raises
    ------
    ConfigError
        An unknown preset or a bad override; raised before any run starts.
    """
    out = Path(out)
    names = presets or reference_presets()
    unknown = [n for n in names if n not in preset_names()]
    if unknown:
        raise ConfigError(f"unknown preset(s) {', '.join(unknown)}; valid: {', '.join(preset_names())}")
    extra = list(overrides or []) + ([f"train.threads={threads}"] if threads else [])
    configs = {n: with_overrides(load_config(n), extra) for n in names}  # all validated before any work
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    prepared: dict[tuple, Any] = {}
    for name, cfg in configs.items():
        key = data_key(cfg)
        if key not in prepared:
            prepared[key] = prepare_data(cfg, data_dir=data_dir)
        run_dir = out / name
        if run_dir.exists():
            shutil.rmtree(run_dir)
        log(f"[{name}] {cfg.description}" + (f" (with {', '.join(extra)})" if extra else ""))
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
        "presets": {n: {"run_dir": n, "metrics": r.metrics, "reference": _reference_entry(n)} for n, r in runs.items()},
        "comparisons": comparisons,
        "checks": run_checks(runs),
    }
    atomic_write_json(out / "summary.json", summary)
    atomic_write_text(out / "summary.md", summary_markdown(summary))
    log(f"report: {build_seed_report(out, out / 'report.html')}")
    return out / "summary.md"


def _comparison_figures(out: Path, runs: dict[str, Any]) -> list[dict[str, Any]]:
    done = []
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
        done.append({"name": name, "title": title, "presets": present, "figures": figures})
    return done


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 0.01 else f"{value:.{digits}f}"
    return str(value)


def summary_markdown(summary: dict[str, Any]) -> str:
    d = summary["data"]
    report = data_stats()
    lines = [
        "# mlpkit reproduce: the seed report's experiments",
        "",
        f"Training set {d['n_train']} images, validation set {d['n_val']} images.",
        f"Normalization: mean {d['mean']!r} (report {report['mean']!r}), std {d['std']!r} (report {report['std']!r}).",
        f"Total wall time: {summary['wall_time_s']:.1f} s.",
        "",
        ("Ours = final weights after training (whole training set for train loss/accuracy);"
         " report = the numbers the seed report states."),
        "",
        ("| preset | params | train loss (ours / report) | train acc | val loss (ours / report) | val acc (ours / report)"
         " | best val loss @ step | early stop step (epoch) | wall s |"),
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
