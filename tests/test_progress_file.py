"""The progress file a fit rewrites for live readers (``mlpkit serve``): what it holds, that it
changes nothing about training, and that a failed write does not stop training."""

from __future__ import annotations

import json

import numpy as np

from mlpkit.nn.mlp import MLP
from mlpkit.optim.sgd import SGD
from mlpkit.train.callbacks import EarlyStopping, History
from mlpkit.train.progress_file import MAX_LOSS_POINTS, ProgressFile, loss_points
from mlpkit.train.trainer import Trainer


def fit(callbacks_for, *, epochs: int = 3):
    rng = np.random.default_rng(5)
    centers = rng.normal(scale=3, size=(3, 6))
    y = rng.integers(0, 3, 400)
    x = rng.normal(size=(400, 6)) + centers[y]
    model = MLP([8], n_features=6, n_classes=3, activation="relu").init_weights(rng, "he_normal")
    history = History()
    stopper = EarlyStopping(patience=100)
    trainer = Trainer(
        model,
        SGD(model.parameters(), lr=0.05, momentum=0.9),
        rng=rng,
        epochs=epochs,
        batch_size=16,
        engine="numpy",
        callbacks=[history, stopper, *callbacks_for(history, stopper)],
    )
    xp = model.prepare_inputs(x)
    trainer.fit(xp[:300], y[:300], xp[300:], y[300:])
    return history, model


def test_the_file_holds_the_finished_fit_and_training_is_unchanged(tmp_path):
    path = tmp_path / "progress.json"
    history, model = fit(lambda h, s: [ProgressFile(path, h, s, min_interval_s=0.0)])
    plain_history, plain_model = fit(lambda h, s: [])
    assert np.array_equal(history.train_loss, plain_history.train_loss)  # bit-identical training
    assert all(np.array_equal(a, b) for a, b in zip(model.parameters(), plain_model.parameters()))
    doc = json.loads(path.read_text())
    assert doc["status"] == "finished"
    assert doc["step"] == doc["total_steps"] == 3 * (300 // 16)
    assert doc["validation"]["step"] == history.validation["step"]
    assert doc["validation"]["val_accuracy"] == history.validation["val_accuracy"]
    assert doc["train"]["step"][-1] == doc["step"] and doc["train"]["loss"][-1] is not None
    assert doc["early_stopping"]["patience"] == 100 and doc["early_stopping"]["stopped_step"] is None
    assert doc["elapsed_s"] >= 0 and list(tmp_path.iterdir()) == [path]  # no temporaries left


def test_a_failed_write_turns_the_file_off(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    progress: list[ProgressFile] = []

    def make(history, stopper):
        progress.append(ProgressFile(blocker / "progress.json", history, stopper))
        return progress

    history, _ = fit(make, epochs=1)
    assert history.num_steps == 300 // 16 and not progress[0].enabled


def test_loss_points_average_runs_of_steps():
    assert loss_points(np.array([])) == ([], [])
    assert loss_points(np.array([1.0, 3.0, 5.0]), limit=2) == ([2, 3], [2.0, 5.0])
    steps, losses = loss_points(np.arange(10_001, dtype=float))
    assert len(steps) <= MAX_LOSS_POINTS and steps[-1] == 10_001 and steps == sorted(steps)
    assert loss_points(np.array([np.nan, 1.0]), limit=2) == ([1, 2], [None, 1.0])
