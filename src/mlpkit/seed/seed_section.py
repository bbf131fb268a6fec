"""The seed report's "Across seeds" section (``reproduce --seeds``): mean +- std over seeds beside
the single run's number and the report's, whether each conclusion is significant across seeds,
and the comparison groups' validation curves as mean +- std bands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlpkit.report.format import fmt
from mlpkit.report.page import Assets, badge, table
from mlpkit.report.sweep_figures import band_figure
from mlpkit.seed.checks import COMPARISONS
from mlpkit.seed.reference import stated
from mlpkit.seed.seed_stats import band_series, seed_runs

#: (metric, format, heading) of the table; the report states val accuracy and loss and train loss.
COLUMNS = (("val_accuracy", "acc", "val acc"), ("val_loss", "loss", "val loss"), ("train_loss", "loss", "train loss"))


def _pm(entry: dict[str, Any]) -> str:
    if entry.get("mean") is None:
        return "\u2013"
    return f"{entry['mean']:.4f} \u00b1 {entry['std']:.4f}"  # four decimals: the std of a loss too


def _verdict(significant: bool) -> dict[str, str]:
    return badge("significant", "ok") if significant else badge("not significant", "off")


def seeds_section(summary: dict[str, Any], reproduce_dir: Path, assets: Assets) -> dict[str, Any] | None:
    """Template data of the section, or None when the summary has no seed statistics."""
    seeds = summary.get("seeds")
    if not seeds:
        return None
    presets = seeds.get("presets", {})
    rows = []
    for name, entry in presets.items():
        single = (summary.get("presets", {}).get(name) or {}).get("metrics") or {}
        ref = stated(name)
        row = [name, str(entry["metrics"]["val_accuracy"]["n"])]
        for key, kind, _ in COLUMNS:
            row += [_pm(entry["metrics"][key]), fmt(single.get(key), kind), fmt(ref.get(key), kind)]
        rows.append(row)
    headers = ["preset", "seeds"]
    for _, _, title in COLUMNS:
        headers += [f"{title} (mean \u00b1 std)", "seed 0", "report"]
    tests = [
        [s["claim"], "\u2013" if s.get("p") is None else f"{s['p']:.2g}", _verdict(s["significant"]), s["statement"]]
        for s in seeds.get("significance", [])
    ]
    runs = seed_runs(reproduce_dir, list(presets))
    figures = []
    for group in COMPARISONS:
        present = [p for p in group.presets if p in runs]
        if len(present) < 2:
            continue
        series = [(p, *band_series(runs[p])) for p in present]
        paths = band_figure(
            series, assets.path(f"seeds-{group.name}-val-loss"), ylabel="validation loss", title=group.title
        )
        figures.append(
            assets.figure(paths, alt=f"{group.title}: validation loss over seeds", caption="Validation loss: the"
                          " mean over seeds, the band \u00b11 std at each validation.")
        )  # fmt: skip
    return {
        "n": seeds.get("n"),
        "table": table(headers, rows, numeric=range(1, len(headers)), cls="seeds"),
        "tests": table(["conclusion", "Welch p", "across seeds", "numbers"], tests, cls="significance")
        if tests
        else None,
        "figures": figures,
    }
