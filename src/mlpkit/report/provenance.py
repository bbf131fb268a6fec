"""Where a run came from: the named base config (a shipped preset) of its name, and the settings
in which it departs from it. A run trained with ``--set momentum=0.8`` keeps the preset's name and
description ("momentum 0.9"); pages show these departures beside the name so the description
cannot mislead. The report layer knows no presets itself (they belong to the layer above, see
docs/architecture.md): callers pass a lookup (the CLI passes the shipped presets)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mlpkit.core.errors import MlpkitError
from mlpkit.report.format import flat_config, fmt
from mlpkit.runs.folder import Run

#: Keys that name or describe a run rather than configure it.
LABEL_KEYS = ("name", "description")

#: name -> the config dict a run of that name started from, or None when the name is not known.
BaseConfigs = Callable[[str], Mapping[str, Any] | None]


def _resolved(config: dict[str, Any]) -> dict[str, Any]:
    """Every key with its value, defaults filled in (the raw config where it does not validate)."""
    from mlpkit.runs.config import from_dict

    try:
        return flat_config(from_dict(config).to_dict())
    except MlpkitError:
        return flat_config(config)


def preset_overrides(run: Run, base_configs: BaseConfigs | None) -> list[str]:
    """``key=value`` for every setting in which ``run`` departs from the base config of its name,
    in the config's key order (empty without ``base_configs`` or when the name is unknown)."""
    name = run.config.get("name")
    base = base_configs(str(name)) if base_configs is not None and isinstance(name, str) else None
    if base is None:
        return []
    preset = _resolved(dict(base))
    ours = _resolved(run.config)
    keys = [k for k in {**preset, **ours} if k not in LABEL_KEYS]
    return [f"{k}={fmt(ours.get(k))}" for k in keys if ours.get(k) != preset.get(k)]
