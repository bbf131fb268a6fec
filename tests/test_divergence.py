"""Divergence: a non-finite loss or weight stops training at that step with a clear message
(step, last finite loss), and the history so far and the last good checkpoint stay on disk."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import mnist_dir  # the shared finder of real MNIST
from mlpkit.cli import main
from mlpkit.core.errors import DivergenceError
from mlpkit.nn.mlp import MLP
from mlpkit.optim.sgd import SGD
from mlpkit.runs.config import with_overrides
from mlpkit.train.callbacks import Callback, Checkpointer, History
from mlpkit.train.checkpoint import load_checkpoint
from mlpkit.train.trainer import Trainer
from mlpkit.workflows.configs import resolve_config
from mlpkit.workflows.experiment import resume_experiment, run_experiment

REPO = Path(__file__).resolve().parents[1]
HUGE = [
    "lr=1e6",
    "activation=relu",
    "n_train=500",
    "data.n_val=200",
    "epochs=2",
    "train.checkpoint_every=1",
    "train.threads=1",
]


needs_mnist = pytest.mark.usefixtures("mnist_path")  # fails, never skips, without MNIST (see conftest)


@pytest.fixture(autouse=True)
def quiet_overflow():
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _synthetic(lr: float, callbacks, *, every: int = 1) -> tuple[Trainer, tuple]:
    rng = np.random.default_rng(0)
    model = MLP([16], n_features=10, n_classes=4, activation="relu", dtype="float64", bias="input_column")
    x = model.prepare_inputs(rng.normal(size=(64, 10)) * 3)
    y = rng.integers(0, 4, size=64)
    model.init_weights(rng, "fan_in_normal")
    trainer = Trainer(
        model,
        SGD(model.parameters(), lr=lr, momentum=0.9),
        rng=rng,
        epochs=5,
        batch_size=8,
        validations_per_epoch=8,
        callbacks=callbacks,
    )
    return trainer, (x, y, x, y)


def test_huge_learning_rate_stops_at_the_first_non_finite_loss(tmp_path: Path) -> None:
    history = History()
    trainer, data = _synthetic(1e8, [history, Checkpointer(tmp_path, every=1)])
    with pytest.raises(DivergenceError) as info:
        trainer.fit(*data)
    err = info.value
    losses = history.train_loss
    assert np.isfinite(losses).all() and err.last_finite_loss == losses[-1]
    assert err.step in (len(losses), len(losses) + 1)  # a weight check fires at its own step
    assert f"step {err.step}" in str(err) and f"last finite loss {err.last_finite_loss}" in str(err)
    assert "lower the learning rate" in str(err)
    assert trainer.state.diverged and trainer.state.step < 40
    # the newest checkpoint is a good one: finite weights, from before the divergence
    newest = sorted(tmp_path.glob("step-*.npz"))[-1]
    state = load_checkpoint(newest)
    assert state["step"] < err.step
    assert all(np.isfinite(w).all() for w in state["model"].values())


def test_a_non_finite_weight_is_caught_at_the_next_validation() -> None:
    class Poison(Callback):
        def on_step_end(self, trainer, step, loss) -> None:
            if step == 2:  # a validation step (64 samples / 8 = 8 steps, 8 validations per epoch)
                trainer.model.weights[1][0, 0] = np.inf

    trainer, data = _synthetic(0.01, [Poison()])
    with pytest.raises(DivergenceError, match=r"step 2: layers\.1\.weight has non-finite values \(last finite loss"):
        trainer.fit(*data)


def test_a_finite_run_does_not_trip_the_guard() -> None:
    trainer, data = _synthetic(0.01, [])
    assert trainer.fit(*data).step == 40 and not trainer.state.diverged


@needs_mnist
def test_run_folder_keeps_history_and_last_good_checkpoint(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    cfg = with_overrides(resolve_config("task3c"), HUGE)
    with pytest.raises(DivergenceError) as info:
        run_experiment(cfg, run_dir, data_dir=mnist_dir(), progress=False)
    err = info.value
    assert err.last_finite_loss is not None and np.isfinite(err.last_finite_loss)
    assert str(run_dir) in str(err) and "last good checkpoint" in str(err)

    history = json.loads((run_dir / "history.json").read_text())
    assert len(history["train"]["loss"]) == err.step - 1
    assert history["train"]["loss"][-1] == err.last_finite_loss
    diverged = json.loads((run_dir / "diverged.json").read_text())
    assert diverged["step"] == err.step and diverged["last_finite_loss"] == err.last_finite_loss
    last = run_dir / diverged["last_checkpoint"]
    state = load_checkpoint(last)
    assert state["step"] < err.step
    assert all(np.isfinite(w).all() for w in state["model"].values())
    assert not (run_dir / "metrics.json").exists() and not (run_dir / "weights.npz").exists()

    # resuming replays from the last good checkpoint and diverges at the same step again
    with pytest.raises(DivergenceError) as again:
        resume_experiment(run_dir, data_dir=mnist_dir(), progress=False, log=lambda *a: None)
    assert again.value.step == err.step and again.value.last_finite_loss == err.last_finite_loss


@needs_mnist
def test_cli_reports_divergence_without_a_traceback(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", "task3c", "--out", str(out), "--data-dir", str(mnist_dir()), "--no-progress"]
    for item in HUGE:
        args += ["--set", item]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "error: training diverged at step " in result.output and "last finite loss" in result.output
    assert "Traceback" not in result.output
    assert (out / "history.json").exists() and (out / "diverged.json").exists()
    assert list((out / "checkpoints").glob("step-*.npz"))


@pytest.mark.parametrize("engine", ["numpy", "compiled"])
def test_an_exploding_loss_stops_like_a_nan(engine: str) -> None:
    """lr 1e3 with sigmoid units: the loss jumps by orders of magnitude and stays finite (no NaN
    ever comes); it is stopped as a divergence at the first loss above 1e4 x the first one."""
    from mlpkit.train.trainer import EXPLODED_FACTOR, EXPLODED_MIN

    rng = np.random.default_rng(0)
    model = MLP([32], n_features=10, n_classes=4, activation="sigmoid", dtype="float32", bias="input_column")
    x = model.prepare_inputs(rng.normal(size=(256, 10)) * 50)
    y = rng.integers(0, 4, size=256)
    model.init_weights(rng, "fan_in_normal")
    history = History()
    trainer = Trainer(
        model,
        SGD(model.parameters(), lr=1e3, momentum=0.9),
        rng=rng,
        epochs=20,
        batch_size=16,
        callbacks=[history],
        engine=engine,
    )
    with pytest.raises(DivergenceError, match="exploded") as info:
        trainer.fit(x, y, x, y)
    err, losses = info.value, history.train_loss
    limit = max(EXPLODED_MIN, EXPLODED_FACTOR * losses[0])
    assert np.isfinite(losses).all() and (losses <= limit).all()
    assert err.step == len(losses) + 1 and err.last_finite_loss == losses[-1]
    assert trainer.state.diverged and trainer.state.first_loss == losses[0]
