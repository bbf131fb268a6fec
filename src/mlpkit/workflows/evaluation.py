"""What ``mlpkit evaluate`` found (`Evaluation`, per class `ClassResult`) and how it reads: a
text summary with a per-class table and the confusion matrix, one JSON document, an HTML page.

Kept apart from the computing (`mlpkit.workflows.evaluate`): the numbers are plain values that
any output, or a script, can take.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["MAX_TEXT_CLASSES", "ClassResult", "Evaluation", "format_json", "format_text", "write_html"]

#: The text output prints the confusion matrix up to this many classes.
MAX_TEXT_CLASSES = 20


@dataclass(frozen=True)
class ClassResult:
    """One class's figures: its rows, those predicted right, and the usual ratios (NaN where
    undefined: accuracy and recall of a class with no rows, precision of one never predicted).
    A class's accuracy is its recall (correct over its rows); both are kept for readers of either
    name."""

    label: Any
    count: int
    predicted: int
    correct: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.count if self.count else float("nan")

    @property
    def recall(self) -> float:
        return self.accuracy

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else float("nan")

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "count": self.count,
            "predicted": self.predicted,
            "correct": self.correct,
            "accuracy": _finite_or_none(self.accuracy),
            "precision": _finite_or_none(self.precision),
            "recall": _finite_or_none(self.recall),
        }


@dataclass(frozen=True)
class Evaluation:
    """What ``evaluate`` found.

    Parameters
    ----------
    model : str
        The model file or run folder evaluated.
    dataset : str
        The data set's name or path.
    split : {"test", "train", "all"}
        Which part of it.
    test_carved : bool
        Its test part was carved off the source (not shipped with it).
    n : int
        Rows evaluated.
    loss : float
        Mean cross-entropy, as `mlpkit.nn.mlp.MLP.evaluate` computes it.
    accuracy : float
        Share of rows whose most probable class is their label.
    classes : list
        The model's class labels, in its output order.
    confusion : np.ndarray
        (K, K) counts: rows the true class, columns the predicted one, in ``classes`` order.
    provenance : dict
        Where the model came from: the data set it learned, mlpkit version, config digest, time.
    """

    model: str
    dataset: str
    split: str
    test_carved: bool
    n: int
    loss: float
    accuracy: float
    classes: list[Any]
    confusion: np.ndarray
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def per_class(self) -> list[ClassResult]:
        """Each class's figures, in ``classes`` order, read off the confusion matrix."""
        cm = self.confusion
        return [
            ClassResult(label, int(cm[i].sum()), int(cm[:, i].sum()), int(cm[i, i]))
            for i, label in enumerate(self.classes)
        ]

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values (NaN ratios, and the loss of a diverged model, as null)."""
        return {
            "model": self.model,
            "dataset": self.dataset,
            "split": self.split,
            "test_carved": self.test_carved,
            "n": self.n,
            "loss": _finite_or_none(self.loss),
            "accuracy": self.accuracy,
            "classes": list(self.classes),
            "per_class": [c.to_json() for c in self.per_class],
            "confusion": self.confusion.tolist(),
            "provenance": dict(self.provenance),
        }


def _finite_or_none(value: float) -> float | None:
    return value if np.isfinite(value) else None


def _ratio(value: float) -> str:
    return f"{value:.4f}" if np.isfinite(value) else "-"


def _part(ev: Evaluation) -> str:
    if ev.split == "test":
        return "carved test part" if ev.test_carved else "test part"
    return {"train": "training part", "all": "every row"}[ev.split]


def format_text(ev: Evaluation) -> str:
    """A summary, a per-class table and (up to `MAX_TEXT_CLASSES` classes) the confusion matrix."""
    prov = ev.provenance
    digest = prov.get("config_digest")
    lines = [
        f"model:    {ev.model} (trained on {prov.get('trained_on')}, mlpkit {prov.get('mlpkit_version')}"
        + (f", config {digest[:12]}" if digest else "")
        + ")",
        f"data:     {ev.dataset}, {_part(ev)} ({ev.n:,} rows)",
        f"loss:     {ev.loss:.4f}",
        f"accuracy: {ev.accuracy:.4f} ({int(np.trace(ev.confusion)):,} of {ev.n:,})",
        "",
    ]
    names = [str(c) for c in ev.classes]
    w = max(5, *(len(s) for s in names))
    lines.append(f"{'class':<{w}}  {'count':>7}  {'correct':>7}  {'accuracy':>8}  {'precision':>9}  {'recall':>7}")
    for name, c in zip(names, ev.per_class):
        lines.append(
            f"{name:<{w}}  {c.count:>7}  {c.correct:>7}  {_ratio(c.accuracy):>8}  {_ratio(c.precision):>9}"
            f"  {_ratio(c.recall):>7}"
        )
    if len(names) > MAX_TEXT_CLASSES:
        lines += ["", f"confusion matrix: {len(names)} classes, too many to print; see --json or --html"]
        return "\n".join(lines)
    cw = max(len(str(int(ev.confusion.max()))), *(len(s) for s in names))
    lines += ["", "confusion matrix (rows: true class, columns: predicted class)"]
    lines.append(" " * w + "  " + " ".join(f"{s:>{cw}}" for s in names))
    for name, row in zip(names, ev.confusion):
        lines.append(f"{name:<{w}}  " + " ".join(f"{int(v):>{cw}}" for v in row))
    return "\n".join(lines)


def format_json(ev: Evaluation) -> str:
    """One JSON document (`Evaluation.to_json`)."""
    return json.dumps(ev.to_json(), indent=1, ensure_ascii=False, allow_nan=False)


def write_html(ev: Evaluation, out: str | Path) -> Path:
    """The evaluation as a self-contained HTML page (`mlpkit.report.evaluation_report`)."""
    from mlpkit.report.evaluation_report import build_evaluation_report

    return build_evaluation_report(ev.to_json(), out)
