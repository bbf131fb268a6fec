"""Figures and self-contained HTML pages made from run folders (and an evaluation's plain
results), never from live objects.

``build_report`` writes the run report, ``build_evaluation_report`` the page of ``mlpkit
evaluate``; :mod:`mlpkit.report.page` (skeleton, tables, figures as template data) and
:mod:`mlpkit.report.sections` are the generic pieces other pages build on. Names are imported
on first use, so ``import mlpkit.report`` loads neither matplotlib nor Jinja2.
"""

from __future__ import annotations

from mlpkit.core.lazy import lazy_exports

#: public name -> the module that defines it
_EXPORTS = {
    "build_report": "mlpkit.report.run_report",
    "build_evaluation_report": "mlpkit.report.evaluation_report",
    "REPORT_SECTIONS": "mlpkit.report.run_report",
    "RUN_SECTIONS": "mlpkit.report.run_report",
    "run_figures": "mlpkit.report.plots",
    "comparison_figure": "mlpkit.report.plots",
    "confusion_figure": "mlpkit.report.figures",
    "weights_figure": "mlpkit.report.figures",
    "gallery_figure": "mlpkit.report.figures",
    "Assets": "mlpkit.report.page",
    "render_page": "mlpkit.report.page",
    "table": "mlpkit.report.page",
    "CSP": "mlpkit.report.page",
    "fmt": "mlpkit.report.format",
    "preset_overrides": "mlpkit.report.provenance",
}

__all__ = [
    "CSP",
    "REPORT_SECTIONS",
    "RUN_SECTIONS",
    "Assets",
    "build_evaluation_report",
    "build_report",
    "comparison_figure",
    "confusion_figure",
    "fmt",
    "gallery_figure",
    "preset_overrides",
    "render_page",
    "run_figures",
    "table",
    "weights_figure",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
