"""The training loop with issue 13's options: any optimizer, per-step and plateau schedules,
dropout, label smoothing, clipping, max-norm and an augmentation feed; all resumable exactly
from a state saved mid-run, and run on NumPy with the reason recorded."""

from __future__ import annotations

import numpy as np
import pytest

from mlpkit.core.errors import CheckpointError
from mlpkit.engine.step_options import StepOptions
from mlpkit.nn.dropout import Dropout
from mlpkit.nn.mlp import MLP
from mlpkit.optim.plateau import ReduceOnPlateau
from mlpkit.optim.registry import make_optimizer, make_schedule
from mlpkit.train.augment_feed import AugmentFeed
from mlpkit.train.callbacks import History
from mlpkit.train.trainer import Trainer

N, FEATURES, CLASSES, BATCH, EPOCHS = 240, 12, 3, 16, 4


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, N)
    x = rng.normal(size=(N, FEATURES)) + np.eye(CLASSES, FEATURES)[y] * 2
    model = MLP([10], n_features=FEATURES, n_classes=CLASSES, bias="input_column")
    return model.prepare_inputs(x[:200]), y[:200], model.prepare_inputs(x[200:]), y[200:]


def trainer(optimizer: str = "adam", schedule: str | None = "cosine_warmup", plateau: bool = False, **kw) -> Trainer:
    rng = np.random.default_rng(1)
    model = MLP([10], n_features=FEATURES, n_classes=CLASSES, activation="relu", bias="input_column").init_weights(
        rng, "he_normal"
    )
    opt = make_optimizer(optimizer, model.parameters(), lr=0.01, weight_decay=1e-3)
    steps = EPOCHS * (200 // BATCH)
    options = StepOptions(
        dropout=Dropout(input_rate=0.1, hidden_rate=0.3),
        label_smoothing=0.1,
        clip_norm=1.0,
        max_norm=2.0,
        schedule=make_schedule(schedule, opt, warmup_steps=5, total_steps=steps) if schedule else None,
    )
    return Trainer(
        model,
        opt,
        rng=rng,
        epochs=EPOCHS,
        batch_size=BATCH,
        validations_per_epoch=2,
        callbacks=[History()],
        options=options,
        plateau=ReduceOnPlateau(opt, factor=0.5, patience=0) if plateau else None,
        **kw,
    )


@pytest.mark.parametrize(
    ("optimizer", "plateau"), [("adam", False), ("adamw", True), ("rmsprop", False), ("sgd", True)]
)
def test_a_run_stopped_mid_way_resumes_bit_identically(optimizer: str, plateau: bool) -> None:
    x, y, xv, yv = data()
    whole = trainer(optimizer, plateau=plateau)
    whole.fit(x, y, xv, yv)
    if optimizer == "rmsprop":  # the one optimizer without compiled code
        assert whole.engine_used == "numpy" and whole.fallback_reason == "optimizer rmsprop has no compiled kernel"
    else:  # every option runs compiled (engine.option_steps), and resumes bit-identically too
        assert whole.engine_used == "compiled" and whole.fallback_reason is None
    first = trainer(optimizer, plateau=plateau)
    first.epochs = 2
    first.fit(x, y, xv, yv)
    saved = first.state_dict()
    assert set(saved["schedules"]) == {"cosine_warmup"} | ({"reduce_on_plateau"} if plateau else set())
    second = trainer(optimizer, plateau=plateau)
    second.load_state_dict(saved, second.geometry(len(x)))
    second.fit(x, y, xv, yv)
    for a, b in zip(whole.model.parameters(), second.model.parameters()):
        np.testing.assert_array_equal(a, b)
    assert whole.optimizer.lr == second.optimizer.lr
    norms = np.linalg.norm(whole.model.weights[0][:-1], axis=0)  # each hidden unit's; the bias row is exempt
    assert norms.max() <= 2.0 * (1 + 1e-6) and norms.max() > 1.0


def test_the_schedule_sets_every_steps_learning_rate() -> None:
    x, y, xv, yv = data()
    t = trainer("sgd")
    t.fit(x, y, xv, yv)
    assert t.optimizer.lr == pytest.approx(0.0, abs=1e-12)  # cosine to min_lr 0 at the last step


def test_a_checkpoint_of_another_optimizer_or_without_its_schedule_is_refused() -> None:
    x, y, xv, yv = data()
    adam = trainer("adam")
    adam.epochs = 1
    adam.fit(x, y, xv, yv)
    saved = adam.state_dict()
    sgd = trainer("sgd")
    with pytest.raises(CheckpointError, match="optimizer state"):
        sgd.load_state_dict(saved, sgd.geometry(len(x)))
    unscheduled = trainer("adam", schedule=None)
    with pytest.raises(CheckpointError, match="learning-rate schedule states"):
        unscheduled.load_state_dict(saved, unscheduled.geometry(len(x)))


def test_plain_sgd_without_options_still_runs_compiled() -> None:
    x, y, xv, yv = data()
    rng = np.random.default_rng(1)
    model = MLP([10], n_features=FEATURES, n_classes=CLASSES, bias="input_column").init_weights(rng, "fan_in_normal")
    t = Trainer(model, make_optimizer("sgd", model.parameters(), lr=0.1), rng=rng, epochs=1, batch_size=BATCH)
    t.fit(x, y, xv, yv)
    assert t.engine_used == "compiled" and t.fallback_reason is None


def test_an_augmentation_feed_supplies_each_epochs_inputs() -> None:
    x, y, xv, yv = data()
    plain = trainer()
    plain.fit(x, y, xv, yv)

    def same(epoch: int, out: np.ndarray, stop) -> None:
        out[...] = x

    with AugmentFeed(same, len(x), FEATURES, dtype=x.dtype, bias_column=True) as feed:
        fed = trainer(augment=feed)
        fed.fit(x, y, xv, yv)
    for a, b in zip(plain.model.parameters(), fed.model.parameters()):
        np.testing.assert_array_equal(a, b)  # the feed's inputs are what the steps train on

    def noisy(epoch: int, out: np.ndarray, stop) -> None:
        out[...] = x
        out[:, :-1] += np.random.default_rng(epoch).normal(scale=0.5, size=(len(x), FEATURES))

    with AugmentFeed(noisy, len(x), FEATURES, dtype=x.dtype, bias_column=True) as feed:
        changed = trainer(augment=feed)
        changed.fit(x, y, xv, yv)
    assert not np.array_equal(plain.model.weights[0], changed.model.weights[0])


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (["train.optimizer=adam"], "train.momentum = 0.9 is not used by optimizer adam"),
        (["train.optimizer=lion"], "train.optimizer 'lion' is unknown; valid: sgd, adam, adamw, rmsprop"),
        (["train.warmup_epochs=1"], "train.warmup_epochs = 1.0 is not used by schedule none"),
        (["train.schedule=cosine", "train.momentum=0"], "train.schedule 'cosine' is unknown"),
        (["model.dropout_hidden=1"], "model.dropout_hidden must lie in [0, 1)"),
        (["train.clip_norm=0"], "train.clip_norm must be a number > 0"),
        (["data.augment=rotate"], "data.augment 'rotate' is unknown"),
        (["data.elastic_alpha=30", "data.augment=affine"], "data.elastic_alpha = 30.0 is not used by augment 'affine'"),
        (["train.nesterov=true", "train.momentum=0"], "train.nesterov needs train.momentum > 0"),
    ],
)
def test_inapplicable_or_bad_training_options_are_one_error_line(settings: list[str], message: str) -> None:
    from mlpkit.core.errors import ConfigError
    from mlpkit.runs.config import with_overrides
    from mlpkit.workflows.configs import resolve_config

    with pytest.raises(ConfigError) as info:
        with_overrides(resolve_config("task3c"), settings)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_augmenting_data_that_are_not_pictures_is_refused(tmp_path) -> None:
    from click.testing import CliRunner

    from mlpkit.cli import main

    path = tmp_path / "t.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.normal(size=(100, 5)), y=rng.integers(0, 2, 100))
    args = [
        "train",
        "task3c",
        "--set",
        f"data.dataset={path}",
        "--set",
        "data.augment=affine",
        "--out",
        str(tmp_path / "r"),
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "data.augment needs pictures" in result.output
