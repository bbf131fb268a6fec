"""Which configuration changes a resumed run accepts.

A checkpoint records the configuration it was made with. Resuming with another one would
silently mix two runs (another learning rate from step N on) or crash (another batch size or
training set no longer fits the saved sample order), so a resume compares the two and refuses
every changed key except those that cannot alter what was computed so far.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mlpkit.core.errors import ConfigError

#: Keys a resume may change: more (or fewer, not below the steps done) epochs, BLAS threads,
#: checkpoint cadence and the free-text description. Everything else changes the run itself.
SAFE_ON_RESUME = frozenset({"train.epochs", "train.threads", "train.checkpoint_every", "description"})


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"epochs": 5}}`` -> ``{"train.epochs": 5}`` (tuples as lists, so both compare equal)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, dotted + "."))
        else:
            flat[dotted] = list(value) if isinstance(value, tuple) else value
    return flat


def changed_keys(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Dotted keys whose values differ between two config dicts (absent = None), sorted."""
    a, b = flatten(saved), flatten(current)
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def check_resume_config(
    saved: Mapping[str, Any], current: Mapping[str, Any], *, where: str, allowed: Iterable[str] = SAFE_ON_RESUME
) -> list[str]:
    """The changed keys that are allowed; ConfigError naming the others (with old -> new values).

    Parameters
    ----------
    saved : mapping
        The config the checkpoint was made with (``Config.to_dict()``).
    current : mapping
        The config the resume would run with (config.toml plus ``--set`` overrides).
    where : str
        The run folder (and checkpoint), for the message.

    Returns
    -------
    list of str
        The changed keys, all in ``allowed``.

    Raises
    ------
    ConfigError
        Naming every changed key not in ``allowed``, with its old and new value.
    allowed : iterable of str
        Dotted keys that may change.
    """
    changed = changed_keys(saved, current)
    refused = [k for k in changed if k not in set(allowed)]
    if refused:
        a, b = flatten(saved), flatten(current)
        detail = "; ".join(f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in refused)
        raise ConfigError(
            f"cannot resume {where}: the config differs from the one its checkpoint was made with ({detail});"
            f" only {', '.join(sorted(allowed))} may change on resume. Undo the change, or start a new run"
        )
    return changed
