"""The seed report's numbers, once: ``reference.toml`` read into plain dicts.

``mlpkit reproduce`` writes them beside ours in summary.md/json and the seed report compares
against them; nothing else transcribes the report's numbers.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any

#: The metrics the report may state for a preset (in the order the summary lists them).
REFERENCE_KEYS = ("val_accuracy", "val_loss", "train_loss", "train_accuracy", "early_stop_epoch", "num_parameters")


@cache
def _table() -> dict[str, Any]:
    text = resources.files("mlpkit.seed").joinpath("reference.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def data_stats() -> dict[str, float]:
    """The normalization statistics the report states: ``{"mean": ..., "std": ...}``."""
    return dict(_table()["data"])


def reference_presets() -> list[str]:
    """The presets the report's experiments correspond to, in the report's order."""
    return list(_table()["presets"])


def stated(preset: str) -> dict[str, float]:
    """The numbers the report states for ``preset`` (only those it states; empty if none)."""
    entry = _table()["presets"].get(preset, {})
    return {k: entry[k] for k in REFERENCE_KEYS if k in entry}


def note(preset: str) -> str:
    """A short label for ``preset`` in summary tables ("" if none)."""
    return str(_table()["presets"].get(preset, {}).get("note", ""))
