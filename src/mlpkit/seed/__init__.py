"""The assignment this project reproduces (TDT4265 assignment 2): its experiments as presets,
the report's numbers (once, in ``reference.toml``), its tasks as data (``tasks.toml``), the
comparison groups and acceptance checks, and the seed-report page.

Names are imported on first use: ``mlpkit.runs.config`` reads the presets from this package,
so importing it must stay cheap and must not import the report machinery.
"""

from __future__ import annotations

from mlpkit.core.lazy import lazy_exports

#: public name -> the module that defines it
_EXPORTS = {
    "preset_names": "mlpkit.seed.presets",
    "preset_text": "mlpkit.seed.presets",
    "data_stats": "mlpkit.seed.reference",
    "stated": "mlpkit.seed.reference",
    "note": "mlpkit.seed.reference",
    "reference_presets": "mlpkit.seed.reference",
    "SeedTask": "mlpkit.seed.tasks",
    "seed_tasks": "mlpkit.seed.tasks",
    "seed_task_keys": "mlpkit.seed.tasks",
    "Comparison": "mlpkit.seed.comparison",
    "compare": "mlpkit.seed.comparison",
    "COMPARISONS": "mlpkit.seed.checks",
    "run_checks": "mlpkit.seed.checks",
    "build_seed_report": "mlpkit.seed.report",
}

__all__ = [
    "COMPARISONS",
    "Comparison",
    "SeedTask",
    "build_seed_report",
    "compare",
    "data_stats",
    "note",
    "preset_names",
    "preset_text",
    "reference_presets",
    "run_checks",
    "seed_task_keys",
    "seed_tasks",
    "stated",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
