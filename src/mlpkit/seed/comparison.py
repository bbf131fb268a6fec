"""Our numbers against the seed report's: a verdict per metric, and the sentences that say so.

The report gives rounded numbers ("around 0.15"), so "matches" means "lands where the report's
does" within a tolerance per kind of metric (see :func:`compare`), not equality to the digit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mlpkit.report.format import fmt
from mlpkit.report.sections import history
from mlpkit.runs.folder import Run

METRIC_NAMES = {
    "val_accuracy": "validation accuracy",
    "val_loss": "validation loss",
    "train_accuracy": "training accuracy",
    "train_loss": "training loss",
    "num_parameters": "parameter count",
    "early_stop_epoch": "early-stopping epoch",
    "mean": "pixel mean",
    "std": "pixel standard deviation",
}
METRIC_KIND = {
    "val_accuracy": "acc",
    "train_accuracy": "acc",
    "val_loss": "loss",
    "train_loss": "loss",
    "num_parameters": "int",
    "early_stop_epoch": "epoch",
    "mean": "full",
    "std": "full",
}
#: The validation accuracy whose first crossing measures "faster convergence".
CONVERGENCE_THRESHOLD = 0.90


@dataclass
class Comparison:
    """Our value of one metric next to the report's, with a verdict."""

    metric: str
    ours: float | None
    stated: float | None
    verdict: str = ""  # "matches", "higher", "lower", "not stated", "missing"
    detail: str = ""

    @property
    def name(self) -> str:
        return METRIC_NAMES.get(self.metric, self.metric)

    def shown(self, value: float | None) -> str:
        return fmt(value, METRIC_KIND.get(self.metric, ""))


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
        c.detail = (
            f"ours is {ours}"
            if ours is not None
            else ("early stopping did not fire" if metric == "early_stop_epoch" else "we have no value")
        )
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


def sentence(comparisons: Sequence[Comparison]) -> str:
    """One generated sentence: where our numbers land relative to the report's."""
    judged = [c for c in comparisons if c.verdict in ("matches", "higher", "lower")]
    if not judged:
        return ""
    off = [c for c in judged if c.verdict != "matches"]
    names = ", ".join(c.name for c in judged)
    if not off:
        if len(judged) == 1:
            return f"Our {names} lands where the report's does ({judged[0].detail})."
        count = "Both" if len(judged) == 2 else f"All {len(judged)}"
        return f"{count} of our numbers land where the report's do ({names})."
    parts = [
        f"our {c.name} {c.shown(c.ours)} is {c.verdict} than the report's {c.shown(c.stated)} ({c.detail})" for c in off
    ]
    if len(judged) == 1:
        return parts[0][0].upper() + parts[0][1:] + "."
    agree = len(judged) - len(off)
    return (
        f"{agree} of {len(judged)} numbers {'matches' if agree == 1 else 'match'} the report; " + "; ".join(parts) + "."
    )


def short_verdict(comparisons: Sequence[Comparison]) -> str:
    """A few words for a table: how many of our numbers land where the report's do."""
    judged = [c for c in comparisons if c.verdict in ("matches", "higher", "lower")]
    agree = sum(c.verdict == "matches" for c in judged)
    if not judged:
        return ""
    if len(judged) == 1:
        c = judged[0]
        return f"{c.name} matches the report" if agree else f"{c.name} {c.verdict} than the report's"
    return f"{agree} of {len(judged)} numbers match the report"


def steps_to(hist: dict[str, Any], key: str, threshold: float) -> int | None:
    """The first validation step at which ``key`` reached ``threshold`` (None if never)."""
    val = hist.get("validation", {})
    for step, value in zip(val.get("step", []), val.get(key, [])):
        if value is not None and value >= threshold:
            return int(step)
    return None


@dataclass
class Claim:
    """The report's claim that ``main`` ends at a lower validation loss than ``baseline``, measured."""

    main: str
    baseline: str
    ours: float
    base: float
    steps_main: int | None = None  # first validation step at CONVERGENCE_THRESHOLD accuracy
    steps_base: int | None = None

    @property
    def holds(self) -> bool:
        return self.ours < self.base

    def sentence(self) -> str:
        text = (
            f"{self.main}'s final validation loss {self.ours:.4g} is {'lower' if self.holds else 'not lower'} than "
            f"{self.baseline}'s {self.base:.4g}"
            f"{', as the report says' if self.holds else ', unlike what the report says'}."
        )
        return text + self._speed()

    def short(self) -> str:
        """For a table: the measured outcome, in a few words."""
        if self.holds:
            return f"validation loss lower than {self.baseline}'s, as the report says"
        return f"validation loss not lower than {self.baseline}'s, unlike what the report says"

    def _speed(self) -> str:
        s_main, s_base, base = self.steps_main, self.steps_base, self.baseline
        reach = f"{CONVERGENCE_THRESHOLD:.0%} validation accuracy"
        if s_main is None and s_base is None:
            return ""
        if s_main is None:
            return f" It never reaches {reach}; {base} does at step {s_base:,}."
        if s_base is None:
            return f" It reaches {reach} at step {s_main:,}; {base} never does."
        if s_main == s_base:
            return f" It reaches {reach} at the same step as {base} (step {s_main:,})."
        return (
            f" It reaches {reach} {'sooner' if s_main < s_base else 'later'} (step {s_main:,}) than {base} "
            f"(step {s_base:,})."
        )


def claim(main: str, baseline: str, runs: dict[str, Run]) -> Claim | None:
    """Measure the report's claim that ``main`` ends at a lower validation loss than ``baseline``
    and converges faster (None when either run or its validation loss is missing)."""
    if main not in runs or baseline not in runs:
        return None
    ours, base = runs[main].metrics.get("val_loss"), runs[baseline].metrics.get("val_loss")
    if ours is None or base is None:
        return None
    return Claim(
        main,
        baseline,
        ours,
        base,
        steps_to(history(runs[main]), "val_accuracy", CONVERGENCE_THRESHOLD),
        steps_to(history(runs[baseline]), "val_accuracy", CONVERGENCE_THRESHOLD),
    )
