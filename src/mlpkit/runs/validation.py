"""Checking a config's values: types (as TOML gives them) and ranges, before any work is done.

Each failure is a ConfigError that names the key and says what is allowed.
"""

from __future__ import annotations

from typing import Any

from mlpkit.core.errors import ConfigError
from mlpkit.data.normalize import NORMALIZATION_KINDS
from mlpkit.data.registry import DATASET_NAMES
from mlpkit.data.splits import SPLITS
from mlpkit.engine.selection import ENGINES
from mlpkit.nn.activations import ACTIVATIONS
from mlpkit.nn.initializers import INITIALIZERS
from mlpkit.nn.mlp import BIAS_MODES, DTYPES
from mlpkit.runs.config_schema import Config
from mlpkit.runs.training_options import check_training_options

__all__ = ["MAX_NAME_LENGTH", "coerce", "validate"]

#: What ``hidden`` means, shown wherever a value for it is refused.
_HIDDEN_HINT = "[64] for one hidden layer of 64 units, [64, 64] for two"
#: A run folder is named NAME-YYYYmmdd-HHMMSS[-N]: this keeps it under the usual 255-byte limit.
MAX_NAME_LENGTH = 200


def coerce(key: str, value: Any, hint: Any) -> Any:
    """``value`` checked against a config field's type hint; ints are accepted for floats.

    Parameters
    ----------
    key : str
        The dotted key, for the message.
    value : Any
        As TOML (or an override) gave it.
    hint : type
        The field's type hint (int, float, bool, str, ``tuple[int, ...]``, or ``X | None``).

    Returns
    -------
    The value (a tuple for lists; a float for an int given to a float field).

    Raises
    ------
    ConfigError
        If the value has the wrong type.
    """
    text = str(hint)
    optional = "None" in text
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{key} must not be empty")
    if "tuple" in text:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} must be a list of integers (layer sizes), e.g. {_HIDDEN_HINT}, got {value!r}")
        return tuple(coerce(f"{key}[{i}]", v, int) for i, v in enumerate(value))
    base = text.replace(" | None", "").replace("<class '", "").replace("'>", "")
    if base == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if base == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        return value
    if base == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} must be a number, got {value!r}")
        return float(value)
    if base == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}")
        return value
    raise AssertionError(f"unhandled type {hint} for {key}")  # pragma: no cover


def validate(cfg: Config) -> Config:
    """Range checks that do not need the data; returns ``cfg`` unchanged.

    Raises
    ------
    ConfigError
        Naming the first key whose value is out of range or unknown.
    """
    m, d, t = cfg.model, cfg.data, cfg.train

    def need(ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(message)

    need(len(m.hidden) > 0, f"model.hidden must list at least one layer size, e.g. {_HIDDEN_HINT}")
    need(all(h > 0 for h in m.hidden), f"model.hidden sizes must be positive, got {list(m.hidden)}")
    need(
        m.activation in ACTIVATIONS,
        f"model.activation {m.activation!r} is unknown; valid: {', '.join(sorted(ACTIVATIONS))}",
    )
    need(m.init in INITIALIZERS, f"model.init {m.init!r} is unknown; valid: {', '.join(sorted(INITIALIZERS))}")
    need(m.bias in BIAS_MODES, f"model.bias {m.bias!r} is unknown; valid: {', '.join(BIAS_MODES)}")
    need(d.dataset.strip() != "", f"data.dataset must name a data set ({', '.join(DATASET_NAMES)}) or a path")
    need(d.split in SPLITS, f"data.split {d.split!r} is unknown; valid: {', '.join(SPLITS)}")
    need(d.n_train is None or d.n_train > 0, f"data.n_train must be > 0, got {d.n_train}")
    need(d.n_val is None or d.n_val > 0, f"data.n_val must be > 0, got {d.n_val}")
    need(0 < d.val_fraction < 1, f"data.val_fraction must lie in (0, 1), got {d.val_fraction}")
    need(0 <= d.test_fraction < 1, f"data.test_fraction must lie in [0, 1) (0: no test part), got {d.test_fraction}")
    need(
        d.normalization in NORMALIZATION_KINDS,
        f"data.normalization {d.normalization!r} is unknown; valid: {', '.join(NORMALIZATION_KINDS)}",
    )
    need(
        (d.split == "given") == (d.validation is not None),
        "data.split 'given' needs data.validation (a validation file)"
        if d.split == "given"
        else f"data.validation is only used with data.split = 'given' (split is {d.split!r})",
    )
    need(d.label_column.strip() != "", "data.label_column must name the CSV's label column")
    need(t.epochs >= 1, f"train.epochs must be >= 1, got {t.epochs}")
    need(t.batch_size >= 1, f"train.batch_size must be >= 1, got {t.batch_size}")
    need(0 < t.learning_rate < float("inf"), f"train.learning_rate must be > 0, got {t.learning_rate}")
    need(0.0 <= t.momentum < 1.0, f"train.momentum must lie in [0, 1), got {t.momentum}")
    need(t.validations_per_epoch >= 1, f"train.validations_per_epoch must be >= 1, got {t.validations_per_epoch}")
    need(
        t.early_stopping_patience >= 0,
        f"train.early_stopping_patience must be >= 0 (0 disables), got {t.early_stopping_patience}",
    )
    need(
        t.early_stopping_min_delta >= 0,
        f"train.early_stopping_min_delta must be >= 0, got {t.early_stopping_min_delta}",
    )
    need(t.dtype in DTYPES, f"train.dtype {t.dtype!r} is unknown; valid: {', '.join(DTYPES)}")
    need(t.threads is None or t.threads >= 1, f"train.threads must be >= 1, got {t.threads}")
    need(t.engine in ENGINES, f"train.engine must be one of {', '.join(ENGINES)}, got {t.engine!r}")
    need(t.checkpoint_every >= 0, f"train.checkpoint_every must be >= 0 (0: never), got {t.checkpoint_every}")
    need(cfg.seed >= 0, f"seed must be >= 0, got {cfg.seed}")
    check_training_options(cfg)
    need(
        _is_folder_name(cfg.name),
        f"name must be usable as one folder name (no '/', '\\', control characters,"
        f" '.' or '..', at most {MAX_NAME_LENGTH} bytes), got {cfg.name!r}",
    )
    return cfg


def _is_folder_name(name: str) -> bool:
    """Whether ``name`` is a single path component that names a run folder under ``runs/``."""
    return (
        0 < len(name.encode("utf-8", "surrogatepass")) <= MAX_NAME_LENGTH
        and name not in (".", "..")
        and not any(c in "/\\" or ord(c) < 32 or ord(c) == 127 for c in name)
    )
