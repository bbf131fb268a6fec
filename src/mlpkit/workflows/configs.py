"""Configs by name or path: the shipped presets (from `mlpkit.seed`) or a TOML file.

Why here: `mlpkit.runs` reads config files and text only; the presets belong to the seed
assignment, which sits above runs, so names are turned into configs one layer up.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mlpkit.core.errors import ConfigError
from mlpkit.runs.config import Config, load_config, parse_config, with_overrides
from mlpkit.seed import presets

__all__ = ["preset_names", "resolve_config"]


def preset_names() -> list[str]:
    """Names of the shipped presets, sorted."""
    return presets.preset_names()


def resolve_config(name_or_path: str | Path, overrides: Sequence[str] = ()) -> Config:
    """The config a user means by ``name_or_path``, with ``overrides`` applied.

    Parameters
    ----------
    name_or_path : str or Path
        A path ending in ``.toml`` or naming an existing file or run folder is read as a
        file; anything else must be a preset name (e.g. ``task3c``).
    overrides : sequence of str
        ``key=value`` items (see `mlpkit.runs.config.with_overrides`).

    Returns
    -------
    Config
        Validated.

    Raises
    ------
    ConfigError
        For an unknown preset (listing the valid ones), a missing or invalid file, or an
        invalid override.
    """
    text = str(name_or_path)
    path = Path(text)
    if path.suffix == ".toml" or path.exists():
        cfg = load_config(path)
    else:
        names = preset_names()
        if text not in names:
            raise ConfigError(f"unknown preset {text!r}; valid: {', '.join(names)} (or a .toml file)")
        cfg = parse_config(presets.preset_text(text), source=f"preset {text}")
    return with_overrides(cfg, list(overrides)) if overrides else cfg
