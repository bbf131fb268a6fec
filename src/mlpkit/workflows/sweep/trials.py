"""The trials of a sweep: every grid point x random sample x seed, each with a readable name and
a config resolved (and so validated) before anything runs.

Names are made of the swept values (``hidden=64_lr=0.02_seed=1``): a trial folder says what it
is. Random samples are drawn from one generator seeded by the spec, so a rerun of the same
spec gives the same trials, which is what lets a sweep resume.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import tomli_w

from mlpkit.core.errors import ConfigError
from mlpkit.runs.config import ALIASES, Config, to_toml, with_overrides
from mlpkit.workflows.configs import resolve_config
from mlpkit.workflows.sweep.spec import SweepSpec

MAX_NAME = 120
_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]+")
_SHORT = {v: k for k, v in ALIASES.items() if k != "lr"} | {"train.learning_rate": "lr"}


@dataclass(frozen=True)
class Trial:
    """One run of a sweep.

    Parameters
    ----------
    name : str
        Its folder name under ``DIR/trials`` (unique in the sweep, safe on every filesystem).
    params : dict
        The swept keys (dotted) and their values for this trial.
    seed : int
        The config's seed.
    config : Config
        The trial's whole config (preset + ``[set]`` + params + seed), validated.
    """

    name: str
    params: dict[str, Any]
    seed: int
    config: Config


def override(key: str, value: Any) -> str:
    """``key=value`` with ``value`` written as TOML, so `with_overrides` reads back exactly ``value``."""
    text = tomli_w.dumps({"v": value}).strip()
    return f"{key}={text[len('v = ') :]}"


def short_key(key: str, keys: list[str]) -> str:
    """A swept key as a name shows it: its alias (``lr``) or last part, unless that is ambiguous."""
    short = _SHORT.get(key, key.rsplit(".", 1)[-1])
    clashes = [k for k in keys if k != key and _SHORT.get(k, k.rsplit(".", 1)[-1]) == short]
    return key if clashes else short


def show_value(value: Any) -> str:
    """A value as a trial name shows it: ``[64, 64]`` -> ``64x64``, floats to 4 significant digits."""
    if isinstance(value, list | tuple):
        return "x".join(show_value(v) for v in value) or "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def trial_name(params: dict[str, Any], seed: int, keys: list[str], prefix: str = "") -> str:
    """``prefix`` + ``key=value`` for every swept key, then ``seed=N``; unsafe characters replaced,
    a long name cut and ended with a digest of the whole so that it stays unique."""
    parts = [f"{short_key(k, keys)}={show_value(v)}" for k, v in params.items()] + [f"seed={seed}"]
    name = _UNSAFE.sub("-", prefix + "_".join(parts)).strip("-.") or "trial"
    if len(name) > MAX_NAME:
        digest = hashlib.sha256(name.encode()).hexdigest()[:10]
        name = f"{name[: MAX_NAME - 11]}-{digest}"
    return name


def _sample(kind: str, args: list[Any], rng: np.random.Generator) -> Any:
    if kind == "uniform":
        return float(rng.uniform(args[0], args[1]))
    if kind == "loguniform":
        return float(math.exp(rng.uniform(math.log(args[0]), math.log(args[1]))))
    if kind == "int":
        return int(rng.integers(args[0], args[1], endpoint=True))
    return args[int(rng.integers(len(args)))]  # choice


def random_samples(spec: SweepSpec) -> list[dict[str, Any]]:
    """The spec's ``[random]`` samples (``[{}]`` without one): the same list on every call."""
    if not spec.random:
        return [{}]
    rng = np.random.default_rng(spec.sample_seed)
    return [{k: _sample(kind, args, rng) for k, (kind, args) in spec.random.items()} for _ in range(spec.random_trials)]


def expand(spec: SweepSpec) -> list[Trial]:
    """Every trial of ``spec``, in a fixed order (grid points, then samples, then seeds).

    Raises
    ------
    ConfigError
        For an unknown preset, or a key or value the config refuses: one line per distinct
        mistake, naming the trial it was found in.
    """
    base = resolve_config(spec.preset)
    keys = spec.swept
    fixed = [override(k, v) for k, v in spec.fixed.items()]
    try:
        with_overrides(base, fixed)
    except ConfigError as exc:
        raise ConfigError(f"[set]: {exc}") from None
    grid = [dict(zip(spec.grid, combo)) for combo in itertools.product(*spec.grid.values())] or [{}]
    samples = random_samples(spec)
    trials: list[Trial] = []
    errors: dict[str, str] = {}
    names: set[str] = set()
    for point in grid:
        for i, sample in enumerate(samples):
            params = {**point, **sample}
            prefix = f"r{i:0{len(str(len(samples) - 1))}d}_" if spec.random else ""
            for seed in spec.seeds:
                items = fixed + [override(k, v) for k, v in params.items()] + [f"seed={seed}"]
                name = trial_name(params, seed, keys, prefix)
                try:
                    cfg = with_overrides(base, items)
                except ConfigError as exc:
                    errors.setdefault(str(exc), name)
                    continue
                unique, n = name, 1
                while unique in names:
                    n += 1
                    unique = f"{name}-{n}"
                names.add(unique)
                trials.append(Trial(unique, params, seed, cfg))
    if errors:
        raise ConfigError("\n".join(f"trial {name}: {msg}" for msg, name in errors.items()))
    return trials


def trial_record(trial: Trial) -> dict[str, Any]:
    """What ``sweep.json`` keeps of a trial (plain values; the config as TOML text)."""
    return {"name": trial.name, "params": trial.params, "seed": trial.seed, "config": to_toml(trial.config)}
