"""Seed statistics of ``mlpkit reproduce --seeds N``: each preset's numbers as mean +- std over
seeds, and whether the report's conclusions (each trick helps, shuffling helps) hold beyond the
spread of one seed.

Layout: seed ``s0`` (the preset's own) is the usual run folder ``DIR/<preset>``, so everything
made from single runs stays as it was; the other seeds are ``DIR/seeds/<preset>/seed=<s>``.
A conclusion is tested with Welch's t-test (unequal variances, two-sided, 5%) on the best
validation loss of the two presets' seeds, and reported with whether their mean +- 2 std
intervals are apart.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlpkit.core.errors import MlpkitError
from mlpkit.runs.folder import Run, load_run
from mlpkit.seed.checks import ORDER_CHECKS

SEEDS_DIR = "seeds"
STAT_METRICS = ("val_accuracy", "val_loss", "train_loss", "train_accuracy", "best_val_loss")
ALPHA = 0.05
#: The report's conclusions tested across seeds: (better, worse) on the best validation loss.
CLAIMS = (*ORDER_CHECKS, ("task2c", "task2c-noshuffle"))


def seed_folder(out: Path, preset: str, seed: int, first_seed: int) -> Path:
    """Where the run of ``preset`` with ``seed`` lives (the preset's own seed: ``out/<preset>``)."""
    return out / preset if seed == first_seed else out / SEEDS_DIR / preset / f"seed={seed}"


def seed_runs(out: Path, presets: Sequence[str]) -> dict[str, list[Run]]:
    """Every complete run of each preset over its seeds (``out/<preset>`` first)."""
    found: dict[str, list[Run]] = {}
    for preset in presets:
        folders = [out / preset] + sorted((out / SEEDS_DIR / preset).glob("seed=*"))
        runs = []
        for folder in folders:
            try:
                runs.append(load_run(folder))
            except MlpkitError:
                continue
        if runs:
            found[preset] = runs
    return found


def mean_std(values: Sequence[float | None]) -> dict[str, Any]:
    """``{"mean", "std", "n", "values"}``; std is the sample standard deviation (ddof 1; 0 for one value)."""
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    return {
        "mean": float(v.mean()) if len(v) else None,
        "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
        "n": int(len(v)),
        "values": [float(x) for x in v],
    }


def seed_statistics(runs: Mapping[str, Sequence[Run]]) -> dict[str, Any]:
    """Per preset: the seeds and, per metric of `STAT_METRICS`, mean +- std over them."""
    return {
        preset: {
            "seeds": [r.config.get("seed") for r in rs],
            "metrics": {m: mean_std([r.metrics.get(m) for r in rs]) for m in STAT_METRICS},
        }
        for preset, rs in runs.items()
    }


def welch_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided p-value of Welch's t-test (None with fewer than two values on a side)."""
    if len(a) < 2 or len(b) < 2:
        return None
    if np.std(a) == 0 and np.std(b) == 0:
        return 1.0 if np.mean(a) == np.mean(b) else 0.0
    stats = importlib.import_module("scipy.stats")  # scipy comes with scikit-learn; loaded only here
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def significance(stats: Mapping[str, Any], metric: str = "best_val_loss") -> list[dict[str, Any]]:
    """Each conclusion of `CLAIMS` whose presets both ran: means, p-value and a one-line statement."""
    found = []
    for better, worse in CLAIMS:
        if better not in stats or worse not in stats:
            continue
        a, b = stats[better]["metrics"][metric], stats[worse]["metrics"][metric]
        p = welch_p(a["values"], b["values"])
        holds = a["mean"] < b["mean"]
        apart = a["mean"] + 2 * a["std"] < b["mean"] - 2 * b["std"]
        significant = p is not None and p < ALPHA and holds
        shown = f"{a['mean']:.4f} \u00b1 {a['std']:.4f} vs {b['mean']:.4f} \u00b1 {b['std']:.4f}"
        if p is None:
            verdict = "too few seeds to test"
        elif significant:
            verdict = f"significant across seeds (Welch p = {p:.2g})"
        elif holds:
            verdict = f"not significant across seeds (Welch p = {p:.2g}): within the spread of the seeds"
        else:
            verdict = f"does not hold on average (Welch p = {p:.2g})"
        found.append(
            {
                "claim": f"{better} beats {worse} ({metric} lower)",
                "better": better,
                "worse": worse,
                "metric": metric,
                "p": p,
                "holds_on_average": holds,
                "significant": significant,
                "apart_2std": apart,
                "statement": f"{better} < {worse} in {metric}: {shown} over {a['n']} and {b['n']} seeds; {verdict}"
                + ("; the mean \u00b1 2 std intervals do not overlap" if apart else ""),
            }
        )
    return found


def seeds_markdown(seeds: Mapping[str, Any]) -> list[str]:
    """The "Across seeds" section of summary.md (from summary.json's ``seeds`` block)."""
    lines = [
        "",
        f"## Across seeds ({seeds['n']} seeds per preset)",
        "",
        "Mean \u00b1 std (sample standard deviation) over the seeds; the tables above show the preset's own seed.",
        "",
        "| preset | seeds | val acc | val loss | train loss | best val loss |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for preset, entry in seeds["presets"].items():
        m = entry["metrics"]
        cells = [f"{m[k]['mean']:.4f} \u00b1 {m[k]['std']:.4f}" for k in ("val_accuracy", "val_loss", "train_loss")]
        cells.append(f"{m['best_val_loss']['mean']:.4f} \u00b1 {m['best_val_loss']['std']:.4f}")
        lines.append(f"| {preset} | {m['val_accuracy']['n']} | " + " | ".join(cells) + " |")
    lines += ["", "### Are the report's conclusions significant across seeds?", ""]
    lines += [f"- {s['statement']}" for s in seeds["significance"]] or ["- no comparison has both presets"]
    return lines


def band_series(runs: Sequence[Run], key: str = "val_loss") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validation ``key`` at each validation step: mean and std over the runs that reached it."""
    by_step: dict[int, list[float]] = {}
    for run in runs:
        val = run.history.get("validation", {})
        for step, value in zip(val.get("step", []), val.get(key, [])):
            if value is not None and np.isfinite(value):
                by_step.setdefault(int(step), []).append(float(value))
    steps = np.array(sorted(by_step))
    mean = np.array([np.mean(by_step[s]) for s in steps])
    std = np.array([np.std(by_step[s], ddof=1) if len(by_step[s]) > 1 else 0.0 for s in steps])
    return steps, mean, std
