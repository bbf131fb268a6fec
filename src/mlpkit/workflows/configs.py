"""Configs by name or path: the shipped presets or a TOML file.

Two kinds of presets: the seed assignment's experiments (`mlpkit.seed`, what ``reproduce``
runs) and the modern recipes beside this module (``recipes/*.toml``: ``mnist-fast`` and its
kin, issue 13). Why here: `mlpkit.runs` reads config files and text only; the presets sit
above runs, so names are turned into configs one layer up.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from mlpkit.core.errors import ConfigError
from mlpkit.runs.config import Config, load_config, parse_config, with_overrides
from mlpkit.seed import presets

__all__ = ["preset_names", "recipe_names", "resolve_config"]


def recipe_names() -> list[str]:
    """Names of the modern recipes (``recipes/*.toml``), sorted."""
    files = resources.files("mlpkit.workflows").joinpath("recipes")
    return sorted(p.name[: -len(".toml")] for p in files.iterdir() if p.name.endswith(".toml"))


def preset_names() -> list[str]:
    """Names of every shipped preset: the seed report's and the modern recipes, sorted."""
    return sorted(presets.preset_names() + recipe_names())


def _preset_text(name: str) -> str:
    if name in recipe_names():
        return resources.files("mlpkit.workflows").joinpath("recipes", f"{name}.toml").read_text(encoding="utf-8")
    return presets.preset_text(name)


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
        cfg = parse_config(_preset_text(text), source=f"preset {text}")
    return with_overrides(cfg, list(overrides)) if overrides else cfg
