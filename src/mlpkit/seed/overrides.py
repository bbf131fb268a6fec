"""How a run departs from the shipped preset of its name: the reason its numbers may not land
where the report's do."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from typing import Any

from mlpkit.core.errors import MlpkitError
from mlpkit.report.format import flat_config, fmt
from mlpkit.runs.folder import Run
from mlpkit.seed.presets import preset_names, preset_text


def _resolved(config: dict[str, Any]) -> dict[str, Any]:
    from mlpkit.runs.config import from_dict

    return flat_config(from_dict(config).to_dict())


def preset_overrides(run: Run) -> list[str]:
    """``key=value`` for every setting in which ``run`` departs from the shipped preset of its
    name (empty when the name is not a preset)."""
    name = run.config.get("name")
    if name not in preset_names():
        return []
    preset = _resolved(tomllib.loads(preset_text(name)))
    try:
        ours = _resolved(run.config)
    except MlpkitError:
        ours = flat_config(run.config)
    keys = [k for k in {**preset, **ours} if k not in ("name", "description")]
    return [f"{k}={fmt(ours.get(k))}" for k in keys if ours.get(k) != preset.get(k)]


def common_overrides(runs: Mapping[str, Run]) -> str:
    """The preset departures of each run, grouped (``none`` when every run is its preset)."""
    groups: dict[str, list[str]] = {}
    for name, run in runs.items():
        changed = ", ".join(preset_overrides(run))
        if changed:
            groups.setdefault(changed, []).append(name)
    if not groups:
        return "none: every run is its preset as shipped"
    if len(groups) == 1 and sum(len(v) for v in groups.values()) == len(runs):
        return next(iter(groups)) + " (all runs)"
    return "; ".join(f"{', '.join(v)}: {k}" for k, v in groups.items())
