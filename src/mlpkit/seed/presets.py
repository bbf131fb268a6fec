"""The seed report's experiments as preset configs: TOML files shipped in ``presets/``."""

from __future__ import annotations

from importlib import resources
from typing import Any


def preset_names() -> list[str]:
    """Names of the shipped presets (file stems), sorted."""
    files = resources.files("mlpkit.seed").joinpath("presets")
    return sorted(p.name[: -len(".toml")] for p in files.iterdir() if p.name.endswith(".toml"))


def preset_text(name: str) -> str:
    """The TOML text of preset ``name`` (one of :func:`preset_names`)."""
    return resources.files("mlpkit.seed").joinpath("presets").joinpath(f"{name}.toml").read_text(encoding="utf-8")


def preset_config(name: str) -> dict[str, Any] | None:
    """The resolved config dict of preset ``name``, or None when no preset has that name (the
    lookup reports use to show what a run changed, see :mod:`mlpkit.report.provenance`)."""
    if name not in preset_names():
        return None
    from mlpkit.runs.config import parse_config

    return parse_config(preset_text(name), source=f"preset {name}").to_dict()
