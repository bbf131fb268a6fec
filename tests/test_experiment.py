"""mlpkit.workflows.experiment end to end on real MNIST: what a run records about its data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlpkit.cli import main
from mlpkit.runs import schema
from mlpkit.runs.weights import load_weights

#: The seed split's training images (the first 20,000): mean and population std over all pixels.
SEED_TRAIN_MEAN, SEED_TRAIN_STD = 33.55274553571429, 78.87550070784695


def test_a_run_records_the_training_split_statistics_exactly(mnist_path: Path, tmp_path: Path) -> None:
    """Normalization uses the training set's mean and std, never the validation set's.

    The statistics are those of all 20,000 training images of the seed split, so the run keeps
    them (one short epoch); the validation set is cut to 1,000 images, whose statistics differ.
    """
    out = tmp_path / "run"
    result = CliRunner().invoke(
        main,
        [
            "train",
            "task3c",
            "--set",
            "epochs=1",
            "--set",
            "data.n_val=1000",
            "--set",
            "train.validations_per_epoch=1",
            "--set",
            "train.checkpoint_every=0",
            "--out",
            str(out),
            "--data-dir",
            str(mnist_path),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / schema.METRICS).read_text())
    assert metrics["steps"] == 20_000 // 32
    assert metrics["normalization"] == {"kind": "global", "mean": SEED_TRAIN_MEAN, "std": SEED_TRAIN_STD}
    model, meta = load_weights(out / schema.WEIGHTS)
    assert (meta["mean"], meta["std"]) == (SEED_TRAIN_MEAN, SEED_TRAIN_STD)
    assert list(model.hidden) == [64]
    # the recorded statistics are the ones the inputs were made with: the run's own accuracy
    assert metrics["val_accuracy"] > 0.9


@pytest.mark.parametrize("n_train", [1000])
def test_data_shared_between_runs_must_fit_the_model(mnist_path: Path, tmp_path: Path, n_train: int) -> None:
    from mlpkit.core.errors import ConfigError
    from mlpkit.workflows.configs import resolve_config
    from mlpkit.workflows.experiment import experiment_data, run_experiment

    per_layer = resolve_config("task3c", [f"n_train={n_train}", "model.bias=per_layer"])
    data = experiment_data(per_layer, data_dir=mnist_path)
    assert data.x_train.shape == (n_train, 784)
    with pytest.raises(ConfigError, match="785"):
        run_experiment(resolve_config("task3c", [f"n_train={n_train}"]), tmp_path / "run", data=data)
