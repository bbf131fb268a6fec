"""What ``mlpkit reproduce`` draws together and what it checks: the comparison groups of the
seed report's figures and the acceptance bounds our runs must meet."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlpkit.runs.folder import Run


@dataclass(frozen=True)
class ComparisonGroup:
    """Presets overlaid in one pair of figures (``figures/<name>-loss|accuracy``)."""

    name: str
    presets: tuple[str, ...]
    title: str


COMPARISONS = (
    ComparisonGroup("task2c-3a-3b-3c", ("task2c", "task3a", "task3b", "task3c"), "Tricks of the trade (task 3)"),
    ComparisonGroup("task3c-4a-4b", ("task3c", "task4a", "task4b"), "Hidden units: 64 vs 32 vs 128 (task 4a/4b)"),
    ComparisonGroup(
        "task3c-4d-4e", ("task3c", "task4d", "task4e"), "Depth: [64] vs [59,59] vs ten layers of 64 (task 4d/4e)"
    ),
    ComparisonGroup("task2c-shuffle", ("task2c", "task2c-noshuffle"), "Shuffling the training set (task 2c)"),
)

#: Acceptance bounds (preset, metric, lower bound on the final value).
CHECKS = (
    ("task3c", "val_accuracy", 0.955),
    ("task4a", "val_accuracy", 0.940),
    ("task4b", "val_accuracy", 0.965),
    ("task4d", "val_accuracy", 0.955),
)
#: Orderings (better, worse) of the best validation loss: each trick must help.
ORDER_CHECKS = (("task3b", "task3a"), ("task3c", "task3a"), ("task3a", "task2c"))


def run_checks(runs: Mapping[str, Run]) -> list[dict[str, Any]]:
    """The acceptance checks that the present runs allow: ``{"check", "value", "passed"}`` each."""
    results = []
    for preset, metric, bound in CHECKS:
        if preset in runs:
            value = runs[preset].metrics[metric]
            results.append({"check": f"{preset} {metric} >= {bound}", "value": value, "passed": value >= bound})
    for better, worse in ORDER_CHECKS:
        if better in runs and worse in runs:
            a, b = runs[better].metrics["best_val_loss"], runs[worse].metrics["best_val_loss"]
            results.append({"check": f"best val loss {better} < {worse}", "value": [a, b], "passed": a < b})
    return results
