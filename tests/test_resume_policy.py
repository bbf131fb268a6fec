"""Resume refuses config changes that would alter the run (mlpkit.runs.resume_policy)."""

from __future__ import annotations

import pytest

from mlpkit.core.errors import ConfigError
from mlpkit.runs.resume_policy import changed_keys, check_resume_config

SAVED = {
    "name": "t",
    "seed": 0,
    "model": {"hidden": [64], "activation": "tanh"},
    "data": {"n_train": None, "shuffle": True},
    "train": {"epochs": 5, "batch_size": 32, "learning_rate": 0.1, "threads": None, "engine": "auto"},
}


def changed(**sections):
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in SAVED.items()}
    for section, values in sections.items():
        out[section].update(values)
    return out


def test_unchanged_config_passes():
    assert check_resume_config(SAVED, changed(), where="run") == []


@pytest.mark.parametrize(
    "section,key,value",
    [
        ("data", "n_train", 5000),
        ("train", "batch_size", 64),
        ("train", "learning_rate", 0.2),
        ("train", "engine", "numpy"),
        ("data", "shuffle", False),
        ("model", "hidden", [32]),
    ],
)
def test_changes_that_alter_the_run_are_refused_by_name(section, key, value):
    with pytest.raises(
        ConfigError, match=rf"{section}\.{key}: .* -> {value!r}".replace("[", r"\[").replace("]", r"\]")
    ):
        check_resume_config(SAVED, changed(**{section: {key: value}}), where="run")


def test_safe_changes_are_allowed_and_reported():
    assert check_resume_config(SAVED, changed(train={"epochs": 80, "threads": 2}), where="run") == [
        "train.epochs",
        "train.threads",
    ]


def test_lists_and_tuples_compare_equal_and_missing_equals_none():
    assert changed_keys({"model": {"hidden": [64]}}, {"model": {"hidden": (64,)}}) == []
    assert changed_keys({"data": {"n_train": None}}, {"data": {}}) == []
