"""The evaluation page (``mlpkit evaluate --html``): what was evaluated, loss and accuracy, the
confusion matrix as a figure (and its counts as a table), per-class figures, and where the
model came from.

Built from the evaluation's JSON document (`mlpkit.workflows.evaluate.Evaluation.to_json`),
plain values only, as the run report is built from run folders: this layer never sees a live
model. Same skeleton, stylesheet and Content-Security-Policy as the run report.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mlpkit.core.errors import MlpkitError
from mlpkit.core.fileio import atomic_write_text
from mlpkit.report.figures import confusion_figure
from mlpkit.report.format import DASH, fmt
from mlpkit.report.page import Assets, render_page, table

__all__ = ["EVALUATION_SECTIONS", "build_evaluation_report"]

#: Section ids of the page, in order.
EVALUATION_SECTIONS = ("summary", "confusion", "per-class", "provenance")
_PARTS = {"test": "the test part", "train": "the training part (all but the test part)", "all": "every row"}


def _ratio(value: float | None) -> str:
    return DASH if value is None else fmt(float(value), "acc")


def _summary(doc: Mapping[str, Any]) -> dict[str, Any]:
    part = _PARTS.get(doc["split"], doc["split"])
    if doc["split"] == "test" and doc.get("test_carved"):
        part = "the carved test part (rows training never saw)"
    correct = int(np.trace(np.asarray(doc["confusion"], dtype=np.int64)))
    rows = [
        ["model", str(doc["model"])],
        ["data set", str(doc["dataset"])],
        ["split", f"{doc['split']}: {part}"],
        ["rows", fmt(int(doc["n"]), "int")],
        ["loss (mean cross-entropy)", fmt(doc["loss"], "loss")],
        ["accuracy", f"{fmt(float(doc['accuracy']), 'acc')} ({correct:,} of {int(doc['n']):,})"],
        ["classes", fmt(len(doc["classes"]), "int")],
    ]
    return table(None, rows, cls="summary")


def _confusion(doc: Mapping[str, Any], assets: Assets) -> dict[str, Any]:
    cm = np.asarray(doc["confusion"], dtype=np.int64)
    names = [str(c) for c in doc["classes"]]
    fig = confusion_figure(
        cm,
        assets.path("confusion"),
        labels=names,
        noun="class",
        title=f"{doc['dataset']}, {doc['split']}: confusion matrix ({int(doc['n']):,} rows)",
    )
    rows = [[f"true {name}", *(str(int(v)) for v in cm[i]), str(int(cm[i].sum()))] for i, name in enumerate(names)]
    rows.append(["all", *(str(int(v)) for v in cm.sum(axis=0)), str(int(cm.sum()))])
    k = len(names)
    return {
        "figure": assets.figure(
            fig,
            alt="confusion matrix",
            size="small" if k <= 12 else "medium",
            caption="Rows: true class (with its accuracy); columns: predicted class, in the model's class order. "
            "Cell colour is the share of the row (square-root scale).",
        ),
        "total": int(cm.sum()),
        "table": table(
            ["", *(f"pred {name}" for name in names), "total"], rows, numeric=range(1, k + 2), cls="confusion"
        ),
    }


def _per_class(doc: Mapping[str, Any]) -> dict[str, Any]:
    per = doc["per_class"]
    rows = [
        [
            str(c["label"]),
            fmt(int(c["count"]), "int"),
            fmt(int(c["correct"]), "int"),
            _ratio(c["accuracy"]),
            _ratio(c["precision"]),
            _ratio(c["recall"]),
        ]
        for c in per
    ]
    scored = [c for c in per if c["accuracy"] is not None]
    worst = min(scored, key=lambda c: c["accuracy"]) if scored else None
    hardest = f"Hardest class: {worst['label']} ({worst['accuracy']:.2%} correct)." if worst else ""
    return {
        "hardest": hardest,
        "table": table(
            ["class", "rows", "correct", "accuracy", "precision", "recall"],
            rows,
            numeric=[1, 2, 3, 4, 5],
            cls="per-class",
        ),
    }


def _provenance(doc: Mapping[str, Any]) -> dict[str, Any]:
    prov = doc.get("provenance") or {}
    rows = [
        ["trained on", fmt(prov.get("trained_on"))],
        ["mlpkit version", fmt(prov.get("mlpkit_version"))],
        ["config digest (sha256)", fmt(prov.get("config_digest"))],
        ["saved", fmt(prov.get("created"))],
    ]
    return table(None, rows, cls="provenance")


def build_evaluation_report(doc: Mapping[str, Any], out: str | Path) -> Path:
    """Write the evaluation ``doc`` as a self-contained HTML page, atomically.

    The confusion-matrix figure also lands as PNG and SVG in ``<out-stem>_files/`` beside the
    page (as with the run report).

    Parameters
    ----------
    doc : mapping
        An evaluation's JSON document: ``model``, ``dataset``, ``split``, ``test_carved``, ``n``,
        ``loss``, ``accuracy``, ``classes``, ``per_class``, ``confusion``, ``provenance``.
    out : str or Path
        The HTML file to write (``.html`` or ``.htm``).

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    MlpkitError
        For an output name not ending in .html, before anything is written.
    """
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise MlpkitError(f"evaluation page {out} must end in .html")
    assets = Assets(out)
    nav = [
        ("summary", "What was evaluated"),
        ("confusion", "Confusion matrix"),
        ("per-class", "Per class"),
        ("provenance", "The model's provenance"),
    ]
    page = render_page(
        "evaluation_report.html.j2",
        title=f"mlpkit evaluation: {doc['dataset']} ({doc['split']})",
        subtitle=f"{doc['model']} on {int(doc['n']):,} rows: accuracy {fmt(float(doc['accuracy']), 'acc')}, "
        f"loss {fmt(doc['loss'], 'loss')}",
        nav=nav,
        summary=_summary(doc),
        confusion=_confusion(doc, assets),
        per_class=_per_class(doc),
        provenance=_provenance(doc),
    )
    atomic_write_text(out, page)
    assets.prune()
    return out
