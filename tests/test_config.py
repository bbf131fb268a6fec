import dataclasses
import re
import subprocess
import sys
import tomllib
import types

import pytest

from mlpkit.core.errors import ConfigError
from mlpkit.runs.config import (
    SECTIONS,
    Config,
    from_dict,
    load_config,
    parse_config,
    parse_override,
    to_toml,
    with_overrides,
)
from mlpkit.seed import presets as seed_presets
from mlpkit.workflows.configs import preset_names, resolve_config

SEED_PRESETS = ["task2c", "task2c-noshuffle", "task3a", "task3b", "task3c", "task4a", "task4b", "task4d", "task4e"]


def test_every_seed_preset_ships():
    assert set(SEED_PRESETS) <= set(preset_names())


def test_presets_match_the_spec():
    base, tricks = resolve_config("task2c"), resolve_config("task3c")
    assert (base.model.activation, base.model.init, base.train.learning_rate, base.train.momentum) == (
        "sigmoid",
        "uniform",
        0.1,
        0.0,
    )
    assert (tricks.model.activation, tricks.model.init, tricks.train.learning_rate, tricks.train.momentum) == (
        "improved_sigmoid",
        "fan_in_normal",
        0.02,
        0.9,
    )
    assert resolve_config("task2c-noshuffle").data.shuffle is False
    assert resolve_config("task4d").model.hidden == (59, 59)
    e = resolve_config("task4e")
    assert e.model.hidden == (64,) * 10 and e.train.epochs == 25
    for name in SEED_PRESETS:
        c = resolve_config(name)
        assert (c.train.batch_size, c.train.early_stopping_patience, c.data.split) == (32, 50, "seed")


def test_toml_round_trip(tmp_path):
    cfg = with_overrides(resolve_config("task4d"), ["train.threads=2", "data.n_train=1000"])
    path = tmp_path / "c.toml"
    path.write_text(to_toml(cfg))
    assert load_config(path) == cfg
    assert resolve_config(path) == cfg and resolve_config(str(tmp_path / "c.toml"), ["seed=4"]).seed == 4
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.toml").write_text(to_toml(cfg))
    assert load_config(tmp_path / "run") == cfg  # a run folder stands for its config


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_round_trips_through_tomli_w(name):
    cfg = resolve_config(name)
    text = to_toml(cfg)
    assert from_dict(tomllib.loads(text)) == cfg and parse_config(text) == cfg


@pytest.mark.parametrize(
    "items",
    [
        [],  # every optional key None
        ["data.n_train=1000"],
        ["train.threads=3", "data.n_val=50"],
        ["data.n_train=none", "train.threads=null"],
        ['description=quotes " and \\ backslashes, unicode \u00e9'],
    ],
)
def test_none_values_are_left_out_and_read_back_as_defaults(items):
    cfg = with_overrides(Config(), items)
    text = to_toml(cfg)
    assert not re.search(r"=\s*(none|null)\b", text.lower())  # TOML has no null ("none" the string is fine)
    raw = tomllib.loads(text)
    for section, table in [("", raw), *((s, raw[s]) for s in SECTIONS)]:
        values = getattr(cfg, section) if section else cfg
        absent = {f.name for f in dataclasses.fields(values) if getattr(values, f.name) is None}
        assert absent.isdisjoint(table)
    assert from_dict(raw) == cfg


def test_every_field_that_may_be_none_defaults_to_none():
    """What makes leaving None out of the TOML text lossless."""
    for cls in (Config, *SECTIONS.values()):
        for f in dataclasses.fields(cls):
            if "None" in str(f.type):
                assert f.default is None, f"{cls.__name__}.{f.name}"


def test_toml_text_is_written_by_tomli_w(monkeypatch):
    calls = []
    fake = types.SimpleNamespace(dumps=lambda obj: calls.append(obj) or "")
    monkeypatch.setattr("mlpkit.runs.config.tomli_w", fake)
    to_toml(Config())
    assert calls and calls[0]["model"]["hidden"] == [64] and "threads" not in calls[0]["train"]


def test_runs_config_does_not_know_presets():
    """Presets belong to mlpkit.seed, above runs: runs reads files and text only."""
    with pytest.raises(ConfigError, match="config file task3c does not exist"):
        load_config("task3c")
    code = (
        "import sys, mlpkit.runs.config, mlpkit.runs.folder, mlpkit.runs.schema; "
        "print(sorted(m for m in sys.modules if m.startswith(('mlpkit.seed', 'mlpkit.workflows', "
        "'mlpkit.report', 'matplotlib'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_overrides_by_alias_and_dotted_key():
    cfg = with_overrides(
        resolve_config("task3c"),
        [
            "epochs=3",
            "batch_size=64",
            "learning_rate=0.5",
            "momentum=0.5",
            "seed=9",
            "model.hidden=[10, 20]",
            "data.shuffle=false",
        ],
    )
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.train.learning_rate, cfg.train.momentum, cfg.seed) == (
        3,
        64,
        0.5,
        0.5,
        9,
    )
    assert cfg.model.hidden == (10, 20) and cfg.data.shuffle is False


def test_parse_override_reads_toml_values():
    assert parse_override("lr=1e-2") == ("train.learning_rate", 0.01)
    assert parse_override("model.activation=relu") == ("model.activation", "relu")


@pytest.mark.parametrize(
    ("items", "match"),
    [
        (["train.epochz=3"], "unknown config key 'train.epochz'"),
        (["bogus=1"], "unknown config key 'bogus'"),
        (["learning_rate=0"], "train.learning_rate must be > 0"),
        (["learning_rate=-0.1"], "train.learning_rate must be > 0"),
        (["momentum=1.0"], r"train.momentum must lie in \[0, 1\)"),
        (["momentum=-0.1"], r"train.momentum must lie in \[0, 1\)"),
        (["model.hidden=[]"], "model.hidden must list at least one"),
        (["model.hidden=[64, 0]"], "model.hidden sizes must be positive"),
        (["model.hidden=[64, -3]"], "model.hidden sizes must be positive"),
        (["epochs=0"], "train.epochs must be >= 1"),
        (["epochs=2.5"], "train.epochs must be an integer"),
        (["batch_size=true"], "train.batch_size must be an integer"),
        (["activation=swish"], "model.activation 'swish' is unknown; valid: elu, gelu, improved_sigmoid, leaky"),
        (["init=zeros"], "model.init 'zeros' is unknown"),
        (["data.shuffle=3"], "data.shuffle must be true or false"),
        (["data.split=all"], "data.split 'all' is unknown"),
        (["noequals"], "must look like key=value"),
    ],
)
def test_bad_overrides_name_the_key(items, match):
    with pytest.raises(ConfigError, match=match):
        with_overrides(resolve_config("task3c"), items)


def test_unknown_keys_in_file_are_errors(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[train]\nepochs = 2\nlearnin_rate = 0.1\n")
    with pytest.raises(ConfigError, match=r"learnin_rate in \[train\]"):
        load_config(path)
    with pytest.raises(ConfigError, match="unknown config key"):
        from_dict({"optimizer": {"name": "adam"}})


def test_invalid_toml_and_unknown_preset(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[train\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)
    with pytest.raises(ConfigError, match="unknown preset 'task9'; valid: mnist-aug, mnist-best, mnist-fast, task2c"):
        resolve_config("task9")
    with pytest.raises(ConfigError, match="preset task9.toml|config file task9.toml does not exist"):
        resolve_config("task9.toml")


def test_defaults_are_the_seed_system_but_the_bias():
    c = Config()
    assert c.train.batch_size == 32 and c.train.epochs == 50 and c.train.validations_per_epoch == 5
    assert c.data.split == "seed"
    # a bias vector per layer is the modern default; the seed's presets all name their bias trick
    assert c.model.bias == "per_layer"
    for name in seed_presets.preset_names():
        assert resolve_config(name).model.bias == "input_column", name


@pytest.mark.parametrize("package", ["mlpkit.data", "mlpkit.runs", "mlpkit.workflows"])
def test_package_all_lists_names_that_resolve(package):
    import importlib

    module = importlib.import_module(package)
    assert len(set(module.__all__)) == len(module.__all__) > 5
    if hasattr(module, "_HOMES"):  # lazily imported names: each listed, each with a home
        assert set(module.__all__) == set(module._HOMES)
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    with pytest.raises(AttributeError):
        module.no_such_name  # noqa: B018
