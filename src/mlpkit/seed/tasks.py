"""The seed report's tasks as data: ``tasks.toml`` read into :class:`SeedTask` values."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

DEFAULT_METRICS = ("val_accuracy", "val_loss", "train_accuracy", "train_loss")


@dataclass(frozen=True)
class SeedTask:
    """One task of the seed report: what it says, which presets our figure overlays, which one
    is measured against the report's numbers (fields as documented in ``tasks.toml``)."""

    key: str
    title: str
    quotes: tuple[str, ...] = ()
    says: str = ""
    source: str = "runs"
    overlay: tuple[str, ...] = ()
    main: str | None = None
    baseline: str | None = None
    metrics: tuple[str, ...] = DEFAULT_METRICS
    extras: tuple[str, ...] = ()
    contrast: dict[str, str] = field(default_factory=dict)


def _task(raw: dict[str, Any]) -> SeedTask:
    fields: dict[str, Any] = dict(raw)
    for key in ("quotes", "overlay", "metrics", "extras"):
        if key in fields:
            fields[key] = tuple(fields[key])
    return SeedTask(**fields)


@cache
def seed_tasks() -> tuple[SeedTask, ...]:
    """Every task of the seed report, in the report's order."""
    text = resources.files("mlpkit.seed").joinpath("tasks.toml").read_text(encoding="utf-8")
    return tuple(_task(t) for t in tomllib.loads(text)["task"])


def seed_task_keys() -> list[str]:
    """The task keys the seed report follows, in order ("2a", "2c", ...)."""
    return [t.key for t in seed_tasks()]
