"""How numbers and names read on a page: one place, so every table formats alike."""

from __future__ import annotations

import math
import re
from typing import Any

DASH = "\u2013"


def fmt(value: Any, kind: str = "") -> str:
    """A value as a reader wants it.

    Parameters
    ----------
    value : Any
        The value; None is shown as a dash, booleans as yes/no, lists element by element.
    kind : str
        ``"acc"`` (4 decimals), ``"loss"`` (4 significant digits), ``"int"`` (thousands
        separators), ``"s"`` (a duration), ``"full"`` (every digit of a float), ``"epoch"``
        (one decimal unless whole); empty for a plain rendering (floats to 6 significant digits).

    Returns
    -------
    str
    """
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if kind == "acc":
        return f"{value:.4f}"
    if kind == "loss":
        return f"{value:.4g}"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "s":
        return duration(float(value))
    if kind == "full":
        return repr(float(value))
    if kind == "epoch":
        return f"{value:.1f}" if isinstance(value, float) and not float(value).is_integer() else f"{value:g}"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(fmt(v, kind) for v in value) + "]"
    return str(value)


def duration(seconds: float) -> str:
    """``12.5 s``, ``3 min 7 s`` or ``1 h 5 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{int(minutes)} min {s:.0f} s"
    hours, minutes = divmod(minutes, 60)
    return f"{int(hours)} h {int(minutes)} min"


def slug(text: str) -> str:
    """A file-name-safe form of ``text`` (never empty)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "run"


def flat_config(config: dict[str, Any]) -> dict[str, Any]:
    """``{"train": {"epochs": 2}}`` -> ``{"train.epochs": 2}`` (one level deep, as config.toml is)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            for k2, v2 in value.items():
                flat[f"{key}.{k2}"] = v2
        else:
            flat[key] = value
    return flat


def machine(env: dict[str, Any]) -> str:
    """Platform, processor and CPU count from a run's environment.json."""
    parts = [env.get("platform") or "", env.get("processor") or env.get("machine") or ""]
    if env.get("cpu_count"):
        parts.append(f"{env['cpu_count']} CPUs")
    return ", ".join(p for p in parts if p) or "(not recorded)"


def blas(env: dict[str, Any]) -> str:
    """The BLAS libraries a run used, with their thread counts."""
    libs = env.get("blas") or []
    return (
        "; ".join(
            f"{b.get('internal_api', '?')} {b.get('version', '')} ({b.get('num_threads', '?')} threads, "
            f"{b.get('architecture', '?')})"
            for b in libs
        )
        or "(not recorded)"
    )


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 run``, ``2 runs`` (``many`` for irregular plurals)."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"
