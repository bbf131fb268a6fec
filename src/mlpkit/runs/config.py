"""Typed, frozen run configuration: TOML text and files, and ``key=value`` overrides.

Unknown keys, wrong types and out-of-range values are errors raised before any work is done,
naming the key and what is allowed. Configs are written with tomli-w; TOML has no null, so a
None value is left out and reading the file gives the field's default (None) back. Preset
names are resolved one layer up (`mlpkit.workflows.configs`): this module reads text and files.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

import tomli_w

from mlpkit.core.errors import ConfigError
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


@dataclass(frozen=True)
class ModelConfig:
    """The ``[model]`` table.

    Parameters
    ----------
    hidden : tuple of int
        Hidden layer sizes, input side first: ``(64,)`` is one hidden layer of 64 units.
    activation : str
        Hidden activation, a name in `mlpkit.nn.activations.ACTIVATIONS`.
    init : str
        Weight initializer, a name in `mlpkit.nn.initializers.INITIALIZERS`.
    bias : str
        ``"input_column"`` (a column of ones on the inputs) or ``"per_layer"``.
    """

    hidden: tuple[int, ...] = (64,)
    activation: str = "sigmoid"
    init: str = "uniform"
    bias: str = "input_column"


@dataclass(frozen=True)
class DataConfig:
    """The ``[data]`` table.

    Parameters
    ----------
    split : str
        ``"seed"`` or ``"full"`` (see `mlpkit.data.splits.make_split`).
    n_train, n_val : int or None
        Training and validation set sizes; None for the split's default.
    shuffle : bool
        Reshuffle the training set every epoch.
    """

    split: str = "seed"
    n_train: int | None = None  # None: the split's default (20,000 for "seed")
    n_val: int | None = None
    shuffle: bool = True


@dataclass(frozen=True)
class TrainConfig:
    """The ``[train]`` table.

    Parameters
    ----------
    epochs : int
        Passes over the training set.
    batch_size : int
        Samples per gradient step.
    learning_rate, momentum : float
        Of SGD (see `mlpkit.optim.sgd.SGD`); momentum in [0, 1).
    drop_last : bool
        Skip the last, smaller batch of an epoch.
    validations_per_epoch : int
        Validate every ``steps_per_epoch // validations_per_epoch`` steps.
    early_stopping_patience : int
        Validation checks without improvement before stopping; 0 disables early stopping.
    early_stopping_min_delta : float
        Smallest decrease of the validation loss that counts as an improvement.
    restore_best_weights : bool
        On an early stop, go back to the weights of the best validation check.
    dtype : str
        ``"float32"`` or ``"float64"``.
    threads : int or None
        BLAS thread limit; None leaves the library's own choice.
    checkpoint_every : int
        Validation checks between checkpoints; 0: never.
    engine : str
        ``"auto"`` (compiled steps where they apply), ``"compiled"`` or ``"numpy"``.
    sparse_inputs : bool
        Let the compiled engine treat mostly-blank inputs as sparse (see `mlpkit.engine.sparse`).
    """

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
    """A whole run configuration, frozen; build it with `from_dict`, `parse_config` or `load_config`.

    Parameters
    ----------
    name : str
        Names the run (and its folder).
    description : str
        One line for listings.
    seed : int
        Seeds the one random generator of the run (initialization and shuffling).
    model, data, train : ModelConfig, DataConfig, TrainConfig
        The three tables.
    """

    name: str = "custom"
    description: str = ""
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        """Nested plain dicts (lists for tuples), as `from_dict` takes them."""
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
