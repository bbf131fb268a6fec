"""End-to-end tests of the ``mlpkit`` command on the real MNIST files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib

import numpy as np
import pytest
from click.testing import CliRunner

from mlpkit.cli import main


def run(*args, env_data=None):
    runner = CliRunner()
    env = {"MLPKIT_DATA": str(env_data)} if env_data else {}
    return runner.invoke(main, list(args), env=env, catch_exceptions=False)


def test_data_stats_prints_the_reports_mean_and_std(mnist_path):
    result = run("data", "stats", "--data-dir", str(mnist_path))
    assert result.exit_code == 0, result.output
    assert "training:        20000 images" in result.output
    assert "validation:      10000 images" in result.output
    mean = float(result.output.split("training mean:")[1].split()[0])
    std = float(result.output.split("training std:")[1].split()[0])
    assert mean == pytest.approx(33.55274553571429, rel=1e-13)
    assert std == pytest.approx(78.8755007078470, rel=1e-12)


def test_describe_parameter_counts():
    assert "total parameters: 50880" in run("describe", "task3c").output
    assert "total parameters: 50386" in run("describe", "task4d").output
    assert "total parameters: 87744" in run("describe", "task4e").output


def test_gradcheck_passes_and_reports_error(mnist_path):
    result = run("gradcheck", "task2c", "--hidden", "16,16", "--max-per-parameter", "40", "--data-dir", str(mnist_path))
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output
    err = float(result.output.split("largest absolute error:")[1].split()[0])
    assert err < 1e-3


def test_train_writes_a_complete_run_folder(mnist_path, tmp_path):
    out = tmp_path / "run"
    result = run(
        "train",
        "task3c",
        "--set",
        "epochs=1",
        "--set",
        "n_train=2000",
        "--set",
        "seed=3",
        "--out",
        str(out),
        env_data=mnist_path,
    )
    assert result.exit_code == 0, result.output
    for name in (
        "config.toml",
        "history.json",
        "metrics.json",
        "weights.npz",
        "environment.json",
        "predictions.npz",
        "figures/loss.png",
        "figures/accuracy.png",
        "figures/loss.svg",
    ):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    for key in (
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "num_parameters",
        "steps",
        "early_stop_step",
        "wall_time_s",
    ):
        assert key in metrics
    assert metrics["num_parameters"] == 50880 and metrics["steps"] == 2000 // 32
    assert metrics["early_stop_step"] is None
    assert 0.8 < metrics["val_accuracy"] <= 1.0  # one short epoch already learns
    # the default engine, with MNIST's blank pixels skipped (mlpkit.engine.sparse)
    assert metrics["engine"] == "compiled" and metrics["sparse_inputs"] is True
    history = json.loads((out / "history.json").read_text())
    assert len(history["train"]["loss"]) == 62
    assert history["validation"]["step"] == [12, 24, 36, 48, 60]
    config = tomllib.loads((out / "config.toml").read_text())
    assert config["seed"] == 3 and config["data"]["n_train"] == 2000
    with np.load(out / "weights.npz", allow_pickle=False) as w:
        assert w["layers.0.weight"].shape == (785, 64) and w["layers.1.weight"].shape == (64, 10)
    assert (out / "figures" / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the saved config reproduces the run
    again = run("train", str(out / "config.toml"), "--out", str(tmp_path / "again"), env_data=mnist_path)
    assert again.exit_code == 0
    assert json.loads((tmp_path / "again" / "history.json").read_text()) == history


def test_same_seed_is_deterministic_other_seed_differs(mnist_path, tmp_path):
    def weights(seed, name):
        run(
            "train",
            "task3a",
            "--set",
            "epochs=1",
            "--set",
            "n_train=1000",
            "--set",
            f"seed={seed}",
            "--out",
            str(tmp_path / name),
            env_data=mnist_path,
        )
        with np.load(tmp_path / name / "weights.npz", allow_pickle=False) as w:
            return {k: w[k] for k in w.files}

    a, b, c = weights(1, "a"), weights(1, "b"), weights(2, "c")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["layers.0.weight"], c["layers.0.weight"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "nosuch"], "unknown preset 'nosuch'"),
        (["train", "task3c", "--set", "learning_rate=0"], "train.learning_rate must be > 0"),
        (["train", "task3c", "--set", "momentum=1"], "train.momentum must lie in [0, 1)"),
        (["train", "task3c", "--set", "model.hidden=[]"], "model.hidden must list at least one"),
        (["train", "task3c", "--set", "activation=softsign"], "model.activation 'softsign' is unknown"),
        (
            ["train", "task3c", "--set", "batch_size=5000", "--set", "n_train=1000"],
            "batch_size 5000 is larger than the training set (1000 samples)",
        ),
        (["describe", "task3c", "--set", "train.foo=1"], "unknown config key 'train.foo'"),
    ],
)
def test_bad_input_gets_a_clear_error_and_writes_nothing(mnist_path, tmp_path, args, message):
    out = tmp_path / "out"
    result = run(*args, *(["--out", str(out)] if args[0] == "train" else []), env_data=mnist_path)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert not out.exists() or not any(out.iterdir())


def test_missing_data_dir_is_a_clear_error(tmp_path):
    result = run("data", "stats", "--data-dir", str(tmp_path / "nowhere"))
    assert result.exit_code == 2 and "nowhere" in result.output


def test_console_script_runs():
    result = subprocess.run(
        [sys.executable, "-m", "mlpkit.cli", "--help"], capture_output=True, text=True, env={**os.environ}
    )
    assert result.returncode == 0
    for command in ("data", "describe", "gradcheck", "train", "reproduce", "report"):
        assert command in result.stdout


# ------------------------------------------------- refused before any work (issue 11)
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "epochs=1000000000000"], r"needs about [\d.]+ PiB of memory \(history"),
        (["--set", "hidden=[1000000000]"], r"needs about [\d.]+ TiB of memory"),
        (["--set", "n_train=999999"], r"n_train must be an integer in 1\.\.60000"),
        (["--data-dir", "nowhere"], r"data directory nowhere does not exist"),
        (["--set", "name=../../escaped"], r"name must be usable as one folder name"),
        (["--set", "name=a/b"], r"name must be usable as one folder name"),
        (["--set", "hidden=64"], r"e\.g\. \[64\] for one hidden layer of 64 units"),
    ],
)
def test_refused_before_announcing_or_writing_anything(tmp_path, monkeypatch, args, message):
    import re

    (tmp_path / "cwd").mkdir()
    (tmp_path / "data").mkdir()  # empty: nothing may be read before the refusal
    monkeypatch.chdir(tmp_path / "cwd")
    result = run("train", "task3c", *args, env_data=tmp_path / "data")
    assert result.exit_code == 2, result.output
    assert re.search(message, result.output), result.output
    assert "training task3c" not in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "data"]  # nothing escaped runs/
    assert list((tmp_path / "cwd").iterdir()) == []  # no runs/ folder


def test_memory_refusal_states_the_available_memory(tmp_path, monkeypatch):
    import mlpkit.runs.footprint as footprint

    monkeypatch.setattr(footprint, "available_memory", lambda: 100 * 2**20)
    result = run("train", "task3c", "--out", str(tmp_path / "out"), env_data=tmp_path)
    assert result.exit_code == 2
    assert "more than the 100 MiB available on this machine" in result.output
    assert not (tmp_path / "out").exists()


def test_hidden_hint_does_not_suggest_two_layers_for_one():
    result = run("describe", "task3c", "--set", "hidden=64")
    assert result.exit_code == 2 and "[64, 10]" not in result.output
    assert "[64] for one hidden layer of 64 units" in result.output


def test_out_that_is_a_file_is_a_clear_error(tmp_path):
    from mlpkit.core.errors import ConfigError
    from mlpkit.workflows.configs import resolve_config
    from mlpkit.workflows.experiment import run_experiment

    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        run_experiment(resolve_config("task3c"), tmp_path / "file", data_dir=tmp_path)
    assert (tmp_path / "file").read_text() == "x"
