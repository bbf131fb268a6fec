"""The sweep file: a base preset, fixed settings, a grid, random samples and seeds.

```toml
preset = "task3c"          # a preset name or a .toml config
seeds = [0, 1, 2]          # every configuration runs once per seed (default [0])
seed = 0                   # the generator of the random samples (default 0)
[set]                      # fixed overrides for every trial
epochs = 10
[grid]                     # every combination of these values
"model.hidden" = [[32], [64]]
learning_rate = [0.01, 0.02]
[random]                   # `trials` samples, each crossed with the grid
trials = 8
"train.momentum" = { uniform = [0.5, 0.95] }
```

Why one strict reader: every mistake (an unknown key, an empty grid, a distribution that is not
one, an unknown preset) is one line naming it, found before any trial is submitted.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlpkit.core.errors import ConfigError
from mlpkit.runs.config import ALIASES

#: Distributions of ``[random]``: name -> what its value must be.
DISTRIBUTIONS = {
    "uniform": "[low, high]",
    "loguniform": "[low, high] with 0 < low",
    "int": "[low, high] integers (both included)",
    "choice": "a non-empty list of values",
}
TOP_KEYS = ("preset", "seeds", "seed", "set", "grid", "random")


@dataclass(frozen=True)
class SweepSpec:
    """A sweep file read and checked: dotted config keys (aliases expanded) to values.

    Parameters
    ----------
    preset : str
        The base preset name or config file.
    seeds : tuple of int
        The seeds each configuration runs with (the config's ``seed``).
    sample_seed : int
        Seeds the generator of the random samples, so a rerun draws the same trials.
    fixed : dict
        ``[set]``: dotted key -> value, applied to every trial.
    grid : dict
        ``[grid]``: dotted key -> list of values.
    random : dict
        ``[random]``: dotted key -> ``(distribution, arguments)``.
    random_trials : int
        How many random samples (0 without ``[random]``).
    """

    preset: str
    seeds: tuple[int, ...] = (0,)
    sample_seed: int = 0
    fixed: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list[Any]] = field(default_factory=dict)
    random: dict[str, tuple[str, list[Any]]] = field(default_factory=dict)
    random_trials: int = 0

    @property
    def swept(self) -> list[str]:
        """The swept keys in order: the grid's, then the random ones."""
        return list(self.grid) + [k for k in self.random if k not in self.grid]

    def to_dict(self) -> dict[str, Any]:
        """Plain values (what ``sweep.json`` stores, and what a rerun compares)."""
        return {
            "preset": self.preset,
            "seeds": list(self.seeds),
            "seed": self.sample_seed,
            "set": dict(self.fixed),
            "grid": {k: list(v) for k, v in self.grid.items()},
            "random": {"trials": self.random_trials, **{k: {d: list(a)} for k, (d, a) in self.random.items()}},
        }


def dotted(key: str) -> str:
    """The config key ``key`` means: an alias (``lr``) expanded, else as written."""
    return ALIASES.get(key, key)


def _flatten(table: Mapping[str, Any], prefix: str = "", *, leaves: bool = False) -> dict[str, Any]:
    """``{"train": {"epochs": 5}}`` -> ``{"train.epochs": 5}``. With ``leaves``, a table holding
    anything but tables (a distribution such as ``{ uniform = [0, 1] }``) is a value, not a section."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and not (leaves and not all(isinstance(v, dict) for v in value.values())):
            flat.update(_flatten(value, name + ".", leaves=leaves))
        else:
            flat[name] = value
    return flat


def _distribution(key: str, value: Any, errors: list[str]) -> tuple[str, list[Any]] | None:
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in DISTRIBUTIONS:
        errors.append(
            f"[random] {key}: expected one of {', '.join(f'{{ {d} = {a} }}' for d, a in DISTRIBUTIONS.items())},"
            f" got {value!r}"
        )
        return None
    kind, args = next(iter(value.items()))
    if not isinstance(args, list) or not args:
        errors.append(f"[random] {key}: {kind} takes {DISTRIBUTIONS[kind]}, got {args!r}")
        return None
    if kind == "choice":
        return kind, list(args)
    numeric = all(isinstance(a, int | float) and not isinstance(a, bool) and math.isfinite(a) for a in args)
    ok = len(args) == 2 and numeric and args[0] < args[1]
    if ok and kind == "loguniform":
        ok = args[0] > 0
    if ok and kind == "int":
        ok = all(isinstance(a, int) for a in args)
    if not ok:
        errors.append(f"[random] {key}: {kind} takes {DISTRIBUTIONS[kind]} with low < high, got {args!r}")
        return None
    return kind, list(args)


def parse_spec(raw: Mapping[str, Any], *, source: str = "sweep spec") -> SweepSpec:
    """A `SweepSpec` from the parsed TOML of a sweep file (structure only: the config keys and
    values are checked by resolving every trial's config, see `mlpkit.workflows.sweep.trials`).

    Raises
    ------
    ConfigError
        One line per mistake, each naming ``source`` and the key.
    """
    errors: list[str] = []
    unknown = sorted(set(raw) - set(TOP_KEYS))
    if unknown:
        errors.append(f"unknown key(s) {', '.join(unknown)}; valid: {', '.join(TOP_KEYS)}")
    preset = raw.get("preset")
    if not isinstance(preset, str) or not preset:
        errors.append("'preset' is required: a preset name (see 'mlpkit presets') or a .toml config")
    seeds = raw.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds):
        errors.append(f"'seeds' must be a non-empty list of integers >= 0, got {seeds!r}")
        seeds = [0]
    elif len(set(seeds)) != len(seeds):
        errors.append(f"'seeds' lists a seed twice: {seeds!r}")
    sample_seed = raw.get("seed", 0)
    if not isinstance(sample_seed, int) or isinstance(sample_seed, bool) or sample_seed < 0:
        errors.append(f"'seed' (of the random samples) must be an integer >= 0, got {sample_seed!r}")
        sample_seed = 0
    tables = {}
    for name in ("set", "grid", "random"):
        value = raw.get(name, {})
        if not isinstance(value, dict):
            errors.append(f"[{name}] must be a table")
            value = {}
        tables[name] = value
    fixed = {dotted(k): v for k, v in _flatten(tables["set"]).items()}
    grid: dict[str, list[Any]] = {}
    for key, values in _flatten(tables["grid"]).items():
        if not isinstance(values, list) or not values:
            errors.append(f"[grid] {key}: expected a non-empty list of values, got {values!r}")
            continue
        grid[dotted(key)] = values
    random_table = dict(tables["random"])
    trials = random_table.pop("trials", None)
    random: dict[str, tuple[str, list[Any]]] = {}
    for key, value in _flatten(random_table, leaves=True).items():
        dist = _distribution(key, value, errors)
        if dist is not None:
            random[dotted(key)] = dist
    if random and (not isinstance(trials, int) or isinstance(trials, bool) or trials < 1):
        errors.append(f"[random] trials must be an integer >= 1 (how many samples), got {trials!r}")
        trials = 0
    elif not random_table and trials is not None:
        errors.append("[random] gives 'trials' but no distribution to sample")
    for key in ("seed", "name"):
        if key in grid or key in random or key in fixed:
            errors.append(f"'{key}' cannot be set or swept: seeds come from 'seeds', names from the trials")
    both = sorted((set(grid) | set(random)) & set(fixed))
    if both:
        errors.append(f"key(s) {', '.join(both)} are both fixed in [set] and swept")
    twice = sorted(set(grid) & set(random))
    if twice:
        errors.append(f"key(s) {', '.join(twice)} are in both [grid] and [random]")
    if errors:
        raise ConfigError("\n".join(f"{source}: {e}" for e in errors))
    return SweepSpec(
        preset=str(preset),
        seeds=tuple(seeds),
        sample_seed=sample_seed,
        fixed=fixed,
        grid=grid,
        random=random,
        random_trials=int(trials or 0) if random else 0,
    )


def load_spec(path: str | Path) -> SweepSpec:
    """Read and check a sweep file (see the module docstring).

    Raises
    ------
    ConfigError
        If the file is missing, not TOML, or has mistakes (one line each).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"sweep spec {path} cannot be read: {exc}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"sweep spec {path} is not valid TOML: {exc}") from None
    return parse_spec(raw, source=str(path))
