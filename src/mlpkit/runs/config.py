"""Typed, frozen run configuration: TOML text and files, and ``key=value`` overrides.

Unknown keys, wrong types and out-of-range values are errors raised before any work is done,
naming the key and what is allowed. Configs are written with tomli-w; TOML has no null, so a
None value is left out and reading the file gives the field's default (None) back. Preset
names are resolved one layer up (`mlpkit.workflows.configs`): this module reads text and files.
"""

from __future__ import annotations

import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any, get_type_hints

import tomli_w

from mlpkit.core.errors import ConfigError
from mlpkit.runs.config_schema import SECTIONS, Config, DataConfig, ModelConfig, TrainConfig
from mlpkit.runs.validation import coerce, validate

__all__ = [
    "ALIASES",
    "SECTIONS",
    "Config",
    "DataConfig",
    "ModelConfig",
    "TrainConfig",
    "from_dict",
    "load_config",
    "parse_config",
    "parse_override",
    "to_toml",
    "validate",
    "with_overrides",
]


#: Short names accepted by ``--set`` for the most common keys.
ALIASES = {
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "learning_rate": "train.learning_rate",
    "lr": "train.learning_rate",
    "momentum": "train.momentum",
    "hidden": "model.hidden",
    "activation": "model.activation",
    "init": "model.init",
    "shuffle": "data.shuffle",
    "n_train": "data.n_train",
    "dtype": "train.dtype",
}


# ------------------------------------------------------------------ dicts
def _build(cls: type, raw: dict[str, Any], prefix: str) -> Any:
    hints = get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        where = f"[{prefix}]" if prefix else "the top level"
        raise ConfigError(f"unknown config key(s) {', '.join(unknown)} in {where}; valid: {', '.join(sorted(names))}")
    kwargs = {}
    for name, value in raw.items():
        key = f"{prefix}.{name}" if prefix else name
        if name in SECTIONS and not prefix:
            if not isinstance(value, dict):
                raise ConfigError(f"[{name}] must be a table")
            kwargs[name] = _build(SECTIONS[name], value, name)
        else:
            kwargs[name] = coerce(key, value, hints[name])
    return cls(**kwargs)


def from_dict(raw: dict[str, Any]) -> Config:
    """A validated config from nested dicts (as TOML parses them); missing keys take their defaults.

    Raises
    ------
    ConfigError
        For an unknown key, a wrong type or an out-of-range value, naming the key.
    """
    return validate(_build(Config, raw, ""))


# ------------------------------------------------------------------ text & files
def parse_config(text: str, *, source: str = "config") -> Config:
    """A config from TOML text.

    Parameters
    ----------
    text : str
        TOML; keys left out take their defaults.
    source : str
        What the text is, for error messages (a file name, ``preset task3c``).

    Returns
    -------
    Config

    Raises
    ------
    ConfigError
        If the text is not valid TOML or not a valid config.
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source} is not valid TOML: {exc}") from None
    return from_dict(raw)


def load_config(path: str | Path) -> Config:
    """A config from a TOML file, or from a run folder (its ``config.toml``).

    Parameters
    ----------
    path : str or Path
        The ``.toml`` file or the run folder.

    Returns
    -------
    Config

    Raises
    ------
    ConfigError
        If the file does not exist, cannot be read, or is not a valid config.
    """
    path = Path(path)
    if path.is_dir() and (path / "config.toml").exists():
        path = path / "config.toml"
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from None
    return parse_config(text, source=str(path))


def parse_override(item: str) -> tuple[str, Any]:
    """``key=value`` -> (dotted key, value): the value is read as TOML (``0.1``, ``[64,64]``,
    ``true``), else kept as a string; ``none``/``null`` mean None; aliases are expanded.

    Raises
    ------
    ConfigError
        If ``item`` has no ``=``.
    """
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like key=value")
    key, _, text = item.partition("=")
    key = ALIASES.get(key.strip(), key.strip())
    text = text.strip()
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    if text.lower() in ("none", "null"):
        value = None
    return key, value


def with_overrides(cfg: Config, items: list[str]) -> Config:
    """A copy of ``cfg`` with ``key=value`` overrides applied, validated again.

    Parameters
    ----------
    cfg : Config
        The config to start from.
    items : list of str
        ``key=value`` strings; keys are dotted (``train.epochs``) or one of `ALIASES`.

    Returns
    -------
    Config

    Raises
    ------
    ConfigError
        For an unknown key (listing the valid ones) or an invalid value.
    """
    raw = cfg.to_dict()
    for item in items:
        key, value = parse_override(item)
        parts = key.split(".")
        if len(parts) == 1:
            if parts[0] not in raw or parts[0] in SECTIONS:
                dotted = [f"{s}.{f.name}" for s, c in SECTIONS.items() for f in fields(c)]
                valid = sorted([k for k in raw if k not in SECTIONS] + list(ALIASES) + dotted)
                raise ConfigError(f"unknown config key {key!r}; valid: {', '.join(valid)}")
            raw[parts[0]] = value
        elif len(parts) == 2 and parts[0] in SECTIONS:
            if parts[1] not in raw[parts[0]]:
                listed = ", ".join(f"{parts[0]}.{f.name}" for f in fields(SECTIONS[parts[0]]))
                raise ConfigError(f"unknown config key {key!r}; valid: {listed}")
            raw[parts[0]][parts[1]] = value
        else:
            raise ConfigError(f"unknown config key {key!r}; sections are {', '.join(SECTIONS)}")
    return from_dict(raw)


def to_toml(cfg: Config) -> str:
    """TOML text of ``cfg`` (written by tomli-w); `parse_config` reads it back equal.

    None values are left out (TOML has no null): every field that may be None has None as
    its default, so reading the text gives them back.
    """

    def without_none(table: dict[str, Any]) -> dict[str, Any]:
        return {k: without_none(v) if isinstance(v, dict) else v for k, v in table.items() if v is not None}

    return tomli_w.dumps(without_none(cfg.to_dict()))
