import pytest

from mlpkit.runs.config import (Config, from_dict, load_config, parse_override, preset_names, to_toml,
                           with_overrides)
from mlpkit.core.errors import ConfigError

SEED_PRESETS = ["task2c", "task2c-noshuffle", "task3a", "task3b", "task3c", "task4a", "task4b", "task4d", "task4e"]


def test_every_seed_preset_ships():
    assert set(SEED_PRESETS) <= set(preset_names())


def test_presets_match_the_spec():
    base, tricks = load_config("task2c"), load_config("task3c")
    assert (base.model.activation, base.model.init, base.train.learning_rate, base.train.momentum) == (
        "sigmoid", "uniform", 0.1, 0.0)
    assert (tricks.model.activation, tricks.model.init, tricks.train.learning_rate, tricks.train.momentum) == (
        "improved_sigmoid", "fan_in_normal", 0.02, 0.9)
    assert load_config("task2c-noshuffle").data.shuffle is False
    assert load_config("task4d").model.hidden == (59, 59)
    e = load_config("task4e")
    assert e.model.hidden == (64,) * 10 and e.train.epochs == 25
    for name in SEED_PRESETS:
        c = load_config(name)
        assert (c.train.batch_size, c.train.early_stopping_patience, c.data.split) == (32, 50, "seed")


def test_toml_round_trip(tmp_path):
    cfg = with_overrides(load_config("task4d"), ["train.threads=2", "data.n_train=1000"])
    path = tmp_path / "c.toml"
    path.write_text(to_toml(cfg))
    assert load_config(path) == cfg


def test_overrides_by_alias_and_dotted_key():
    cfg = with_overrides(load_config("task3c"), ["epochs=3", "batch_size=64", "learning_rate=0.5", "momentum=0.5",
                                                 "seed=9", "model.hidden=[10, 20]", "data.shuffle=false"])
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.train.learning_rate, cfg.train.momentum, cfg.seed) == (
        3, 64, 0.5, 0.5, 9)
    assert cfg.model.hidden == (10, 20) and cfg.data.shuffle is False


def test_parse_override_reads_toml_values():
    assert parse_override("lr=1e-2") == ("train.learning_rate", 0.01)
    assert parse_override("model.activation=relu") == ("model.activation", "relu")


@pytest.mark.parametrize(("items", "match"), [
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
    (["activation=swish"], "model.activation 'swish' is unknown; valid: improved_sigmoid, relu, sigmoid, tanh"),
    (["init=zeros"], "model.init 'zeros' is unknown"),
    (["data.shuffle=3"], "data.shuffle must be true or false"),
    (["data.split=all"], "data.split 'all' is unknown"),
    (["noequals"], "must look like key=value"),
])
def test_bad_overrides_name_the_key(items, match):
    with pytest.raises(ConfigError, match=match):
        with_overrides(load_config("task3c"), items)


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
    with pytest.raises(ConfigError, match="unknown preset 'task9'; valid: task2c"):
        load_config("task9")


def test_defaults_are_the_seed_system():
    c = Config()
    assert c.train.batch_size == 32 and c.train.epochs == 50 and c.train.validations_per_epoch == 5
    assert c.data.split == "seed" and c.model.bias == "input_column"
