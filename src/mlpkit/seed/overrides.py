"""How the runs of a reproduce folder depart from the shipped presets: the reason their numbers
may not land where the report's do (per run: :func:`mlpkit.report.provenance.preset_overrides`)."""

from __future__ import annotations

from collections.abc import Mapping

from mlpkit.report.provenance import preset_overrides
from mlpkit.runs.folder import Run
from mlpkit.seed.presets import preset_config

__all__ = ["common_overrides", "preset_overrides"]


def common_overrides(runs: Mapping[str, Run]) -> str:
    """The preset departures of each run, grouped (``none`` when every run is its preset)."""
    groups: dict[str, list[str]] = {}
    for name, run in runs.items():
        changed = ", ".join(preset_overrides(run, preset_config))
        if changed:
            groups.setdefault(changed, []).append(name)
    if not groups:
        return "none: every run is its preset as shipped"
    if len(groups) == 1 and sum(len(v) for v in groups.values()) == len(runs):
        return next(iter(groups)) + " (all runs)"
    return "; ".join(f"{', '.join(v)}: {k}" for k, v in groups.items())
