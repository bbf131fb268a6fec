"""Where a run came from: the shipped preset of its name, and the settings in which it departs
from it. A run trained with ``--set momentum=0.8`` keeps the preset's name and description
("momentum 0.9"); pages show these departures beside the name so the description cannot mislead."""

from __future__ import annotations

from typing import Any

from mlpkit.core.errors import MlpkitError
from mlpkit.report.format import flat_config, fmt
from mlpkit.runs.folder import Run

#: Keys that name or describe a run rather than configure it.
LABEL_KEYS = ("name", "description")


def _resolved(config: dict[str, Any]) -> dict[str, Any]:
    """Every key with its value, defaults filled in (the raw config where it does not validate)."""
    from mlpkit.runs.config import from_dict

    try:
        return flat_config(from_dict(config).to_dict())
    except MlpkitError:
        return flat_config(config)


def preset_overrides(run: Run) -> list[str]:
    """``key=value`` for every setting in which ``run`` departs from the shipped preset of its
    name, in the config's key order (empty when the name is not a preset)."""
    from mlpkit.runs.config import load_config, preset_names

    name = run.config.get("name")
    if name not in preset_names():
        return []
    preset = flat_config(load_config(str(name)).to_dict())
    ours = _resolved(run.config)
    keys = [k for k in {**preset, **ours} if k not in LABEL_KEYS]
    return [f"{k}={fmt(ours.get(k))}" for k in keys if ours.get(k) != preset.get(k)]
