"""Typed, frozen run configuration: TOML files, presets shipped with the package, and
``key=value`` overrides. Unknown keys, wrong types and out-of-range values are errors
raised before any work is done, naming the key and what is allowed."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any, get_type_hints

from mlpkit.nn.activations import ACTIVATIONS
from mlpkit.engine.planner import ENGINES
from mlpkit.data.mnist import SPLITS
from mlpkit.core.errors import ConfigError
from mlpkit.nn.initializers import INITIALIZERS
from mlpkit.nn.mlp import BIAS_MODES, DTYPES



@dataclass(frozen=True)
class ModelConfig:
    hidden: tuple[int, ...] = (64,)
    activation: str = "sigmoid"
    init: str = "uniform"
    bias: str = "input_column"


@dataclass(frozen=True)
class DataConfig:
    split: str = "seed"
    n_train: int | None = None  # None: the split's default (20,000 for "seed")
    n_val: int | None = None
    shuffle: bool = True


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 50
    batch_size: int = 32
    learning_rate: float = 0.1
    momentum: float = 0.0
    drop_last: bool = True
    validations_per_epoch: int = 5  # validate every steps_per_epoch // this many steps
    early_stopping_patience: int = 50  # in validation checks; 0 disables
    early_stopping_min_delta: float = 0.0
    restore_best_weights: bool = False
    dtype: str = "float32"
    threads: int | None = None
    checkpoint_every: int = 5  # validation checks between checkpoints; 0: never
    engine: str = "auto"  # "auto": compiled steps where they apply; "compiled"; "numpy" (see mlpkit.engine.compiled)
    sparse_inputs: bool = True  # compiled engine: mostly-blank inputs go sparse (see mlpkit.engine.sparse)


@dataclass(frozen=True)
class Config:
    name: str = "custom"
    description: str = ""
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["model"]["hidden"] = list(self.model.hidden)
        return out


SECTIONS = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig}
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


# ------------------------------------------------------------------ type coercion
def _coerce(key: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against the field's type hint; ints are accepted for floats."""
    text = str(hint)
    optional = "None" in text
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{key} must not be empty")
    if "tuple" in text:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} must be a list of integers, e.g. [64, 10], got {value!r}")
        return tuple(_coerce(f"{key}[{i}]", v, int) for i, v in enumerate(value))
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
            kwargs[name] = _coerce(key, value, hints[name])
    return cls(**kwargs)


def validate(cfg: Config) -> Config:
    """Range checks that do not need the data; raise ConfigError naming the key."""
    m, d, t = cfg.model, cfg.data, cfg.train

    def need(ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(message)

    need(len(m.hidden) > 0, "model.hidden must list at least one layer size, e.g. [64]")
    need(all(h > 0 for h in m.hidden), f"model.hidden sizes must be positive, got {list(m.hidden)}")
    need(m.activation in ACTIVATIONS, f"model.activation {m.activation!r} is unknown; valid: {', '.join(sorted(ACTIVATIONS))}")
    need(m.init in INITIALIZERS, f"model.init {m.init!r} is unknown; valid: {', '.join(sorted(INITIALIZERS))}")
    need(m.bias in BIAS_MODES, f"model.bias {m.bias!r} is unknown; valid: {', '.join(BIAS_MODES)}")
    need(d.split in SPLITS, f"data.split {d.split!r} is unknown; valid: {', '.join(SPLITS)}")
    need(d.n_train is None or d.n_train > 0, f"data.n_train must be > 0, got {d.n_train}")
    need(d.n_val is None or d.n_val > 0, f"data.n_val must be > 0, got {d.n_val}")
    need(t.epochs >= 1, f"train.epochs must be >= 1, got {t.epochs}")
    need(t.batch_size >= 1, f"train.batch_size must be >= 1, got {t.batch_size}")
    need(t.learning_rate > 0 and t.learning_rate < float("inf"), f"train.learning_rate must be > 0, got {t.learning_rate}")
    need(0.0 <= t.momentum < 1.0, f"train.momentum must lie in [0, 1), got {t.momentum}")
    need(t.validations_per_epoch >= 1, f"train.validations_per_epoch must be >= 1, got {t.validations_per_epoch}")
    need(
        t.early_stopping_patience >= 0,
        f"train.early_stopping_patience must be >= 0 (0 disables), got {t.early_stopping_patience}",
    )
    need(t.early_stopping_min_delta >= 0, f"train.early_stopping_min_delta must be >= 0, got {t.early_stopping_min_delta}")
    need(t.dtype in DTYPES, f"train.dtype {t.dtype!r} is unknown; valid: {', '.join(DTYPES)}")
    need(t.threads is None or t.threads >= 1, f"train.threads must be >= 1, got {t.threads}")
    need(t.engine in ENGINES, f"train.engine must be one of {', '.join(ENGINES)}, got {t.engine!r}")
    need(t.checkpoint_every >= 0, f"train.checkpoint_every must be >= 0 (0: never), got {t.checkpoint_every}")
    need(cfg.seed >= 0, f"seed must be >= 0, got {cfg.seed}")
    return cfg


def from_dict(raw: dict[str, Any]) -> Config:
    return validate(_build(Config, raw, ""))


# ------------------------------------------------------------------ presets & files
def preset_names() -> list[str]:
    files = resources.files("mlpkit.seed").joinpath("presets")
    return sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".toml"))


def _parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source} is not valid TOML: {exc}") from None


def load_config(name_or_path: str | Path) -> Config:
    """A preset name (e.g. ``task3c``) or the path of a TOML file (e.g. a run's config.toml)."""
    text_name = str(name_or_path)
    path = Path(text_name)
    if path.suffix == ".toml" or path.exists():
        if path.is_dir() and (path / "config.toml").exists():
            path = path / "config.toml"
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        return from_dict(_parse_toml(path.read_text(encoding="utf-8"), str(path)))
    if text_name not in preset_names():
        raise ConfigError(f"unknown preset {text_name!r}; valid: {', '.join(preset_names())} (or a .toml file)")
    text = resources.files("mlpkit.seed").joinpath("presets").joinpath(f"{text_name}.toml").read_text(encoding="utf-8")
    return from_dict(_parse_toml(text, f"preset {text_name}"))


def parse_override(item: str) -> tuple[str, Any]:
    """``key=value``; the value is read as a TOML value (``0.1``, ``[64,64]``, ``true``), else a string."""
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
    """Apply ``key=value`` overrides (dotted keys or the short aliases) and re-validate."""
    raw = cfg.to_dict()
    for item in items:
        key, value = parse_override(item)
        parts = key.split(".")
        if len(parts) == 1:
            if parts[0] not in raw or parts[0] in SECTIONS:
                valid = sorted([k for k in raw if k not in SECTIONS] + list(ALIASES) + [f"{s}.{f.name}" for s, c in SECTIONS.items() for f in fields(c)])
                raise ConfigError(f"unknown config key {key!r}; valid: {', '.join(valid)}")
            raw[parts[0]] = value
        elif len(parts) == 2 and parts[0] in SECTIONS:
            if parts[1] not in raw[parts[0]]:
                valid = ", ".join(f"{parts[0]}.{f.name}" for f in fields(SECTIONS[parts[0]]))
                raise ConfigError(f"unknown config key {key!r}; valid: {valid}")
            raw[parts[0]][parts[1]] = value
        else:
            raise ConfigError(f"unknown config key {key!r}; sections are {', '.join(SECTIONS)}")
    return from_dict(raw)


def to_toml(cfg: Config) -> str:
    """Serialize a config as TOML (None values are written as comments: TOML has no null)."""

    def fmt(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(fmt(x) for x in v) + "]"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return repr(v)

    raw = cfg.to_dict()
    lines = []
    for key, value in raw.items():
        if key not in SECTIONS:
            lines.append(f"{key} = {fmt(value)}")
    for section in SECTIONS:
        lines.append(f"\n[{section}]")
        for key, value in raw[section].items():
            lines.append(f"# {key} = (none)" if value is None else f"{key} = {fmt(value)}")
    return "\n".join(lines) + "\n"


def replace_config(cfg: Config, **sections: dict[str, Any]) -> Config:
    """Return a copy with some section fields replaced, e.g. ``train={"epochs": 1}``."""
    kwargs = {name: replace(getattr(cfg, name), **values) for name, values in sections.items()}
    return validate(replace(cfg, **kwargs))
