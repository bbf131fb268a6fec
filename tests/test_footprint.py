"""mlpkit.runs.footprint: the memory a config needs, estimated before any allocation."""

from __future__ import annotations

import numpy as np
import pytest

from mlpkit.core.errors import ConfigError
from mlpkit.nn.mlp import MLP
from mlpkit.runs.footprint import (
    Footprint,
    available_memory,
    check_footprint,
    estimate_footprint,
    format_bytes,
    parameter_count,
)
from mlpkit.workflows.configs import resolve_config


@pytest.mark.parametrize("hidden", [(64,), (59, 59), (64,) * 10, (3, 1, 7)])
@pytest.mark.parametrize("bias", ["input_column", "per_layer"])
def test_parameter_count_is_the_model_layout(hidden, bias):
    """The estimate counts what MLP allocates, without allocating it."""
    model = MLP(hidden, bias=bias)
    assert parameter_count(hidden, n_features=784, n_classes=10, bias=bias) == model.num_parameters


def test_estimate_of_a_seed_preset_is_modest_and_counts_its_arrays():
    cfg = resolve_config("task3c")
    fp = estimate_footprint(cfg, n_train=20_000, n_val=10_000, workers=2)
    prepared = 30_000 * 785 * 4
    assert fp.parts["data"] > prepared and fp.parts["parameters"] >= 50_890 * 4
    assert fp.parts["history"] >= 50 * 625 * 8
    assert 100 * 2**20 < fp.total < 1 * 2**30
    float64 = estimate_footprint(resolve_config("task3c", ["dtype=float64"]), n_train=20_000, n_val=10_000, workers=2)
    assert float64.total > fp.total


def test_enormous_configs_are_estimated_without_allocating():
    huge_epochs = estimate_footprint(resolve_config("task3c", ["epochs=1000000000000"]), n_train=20_000, n_val=10_000)
    assert huge_epochs.parts["history"] > 2**50
    wide = estimate_footprint(resolve_config("task3c", ["hidden=[1000000000]"]), n_train=20_000, n_val=10_000)
    assert wide.parts["parameters"] > 785 * 10**9 * 4
    with pytest.raises(
        ConfigError, match=r"needs about .* PiB of memory \(history .*\), more than the 1 GiB available"
    ):
        check_footprint(huge_epochs, available=2**30)


def test_check_passes_when_it_fits_or_cannot_know(monkeypatch):
    fp = Footprint({"data": 10, "history": 5})
    assert fp.total == 15 and fp.describe() == "data 10 B, history 5 B"
    check_footprint(fp, available=15)
    with pytest.raises(ConfigError):
        check_footprint(fp, available=14)
    monkeypatch.setattr("mlpkit.runs.footprint.available_memory", lambda: None)
    check_footprint(Footprint({"history": 2**80}))


def test_available_memory_is_a_plausible_number():
    n = available_memory()
    assert n is None or 2**24 < n < 2**60


@pytest.mark.parametrize(
    ("n", "text"), [(0, "0 B"), (1023, "1023 B"), (2048, "2 KiB"), (5 * 2**40, "5 TiB"), (int(4.4 * 2**50), "4.4 PiB")]
)
def test_format_bytes(n, text):
    assert format_bytes(n) == text


def test_run_experiment_refuses_before_creating_the_folder(tmp_path, monkeypatch):
    from mlpkit.workflows.experiment import run_experiment

    monkeypatch.setattr("mlpkit.runs.footprint.available_memory", lambda: 2**20)
    with pytest.raises(ConfigError, match="available on this machine"):
        run_experiment(resolve_config("task3c"), tmp_path / "run", data_dir=tmp_path)
    assert not (tmp_path / "run").exists()
    assert np.dtype("float32").itemsize == 4
