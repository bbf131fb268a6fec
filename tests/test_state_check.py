"""A checkpoint's training state is checked against the run before a resume uses it
(mlpkit.train.state_check): every tampering the reliability review tried is refused."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from mlpkit.core.errors import CheckpointError
from mlpkit.nn.mlp import MLP
from mlpkit.optim.sgd import SGD
from mlpkit.train.callbacks import Callback, History
from mlpkit.train.state_check import RunGeometry, check_sample_order, check_trainer_state
from mlpkit.train.trainer import Trainer

N, BATCH, EPOCHS = 60, 8, 3


def geometry(model: MLP) -> RunGeometry:
    spe = N // BATCH
    return RunGeometry(
        n_train=N,
        steps_per_epoch=spe,
        validate_every=max(1, spe // 2),
        parameter_shapes={n: p.shape for n, p in zip(model.parameter_names(), model.parameters())},
        dtype=model.dtype,
    )


@pytest.fixture(scope="module")
def saved():
    """A state saved mid-epoch (step 10 of 7-step epochs) by a real trainer, and its geometry."""
    rng = np.random.default_rng(0)
    model = MLP([5], n_features=4, n_classes=3, activation="tanh").init_weights(rng, "fan_in_normal")
    x = model.prepare_inputs(rng.normal(size=(N, 4)))
    y = rng.integers(0, 3, N)

    class StopAt(Callback):
        def on_step_end(self, trainer, step, loss):
            if step == 10:
                trainer.stop_training = True

    trainer = Trainer(
        model,
        SGD(model.parameters(), lr=0.1, momentum=0.5),
        rng=rng,
        epochs=EPOCHS,
        batch_size=BATCH,
        validations_per_epoch=2,
        callbacks=[History(), StopAt()],
    )
    trainer.fit(x, y, x[:20], y[:20])
    state = trainer.state_dict()
    assert state["step"] == 10 and state["perm"] is not None
    return state, geometry(model)


def test_a_real_state_passes(saved):
    state, geo = saved
    check_trainer_state(state, geo, source="x")


def tampered(state, path, value):
    out = copy.deepcopy(state)
    target = out
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value(target[path[-1]]) if callable(value) else value
    return out


CASES = {
    "out-of-range index": (("perm",), lambda p: np.where(p == p.max(), 10**6, p), "not a permutation"),
    "negative index": (("perm",), lambda p: np.where(p == 0, -1, p), "not a permutation"),
    "repeated index": (("perm",), lambda p: np.where(p == 1, 2, p), "not a permutation"),
    "truncated order": (("perm",), lambda p: p[:-5], "of 55 indices for a training set of 60"),
    "all-zero order": (("perm",), lambda p: np.zeros_like(p), "not a permutation"),
    "order of another run": (("perm",), lambda p: np.arange(1000), "1000 indices"),
    "float order": (("perm",), lambda p: p.astype(float), "not a 1-D integer array"),
    "missing order mid-epoch": (("perm",), None, "no sample order"),
    "step_in_epoch huge": (("step_in_epoch",), 10**6, "step_in_epoch = 1000000"),
    "epoch 99": (("epoch",), 99, "inconsistent counters"),
    "step off by one": (("step",), 11, "inconsistent counters"),
    "negative step": (("step",), -1, "step = -1"),
    "bool counter": (("epoch",), True, "not an integer"),
    "shortened loss history": (("callbacks", "History", "step_loss"), lambda h: h[:-3], "loss history of 7 steps"),
    "NaN in loss history": (
        ("callbacks", "History", "step_loss"),
        lambda h: np.where(h == h[0], np.nan, h),
        "non-finite",
    ),
    "extra validation record": (
        ("callbacks", "History", "validation", "val_loss"),
        lambda v: v + [0.5],
        "validation records",
    ),
    "int64 weights": (("model", "layers.0.weight"), lambda w: w.astype(np.int64), "expected float32"),
    "float64 weights": (("model", "layers.0.weight"), lambda w: w.astype(np.float64), "expected float32"),
    "wrong shape": (("model", "layers.1.weight"), lambda w: w[:-1], r"expected float32 \(5, 3\)"),
    "NaN weights": (("model", "layers.1.weight"), lambda w: np.full_like(w, np.nan), "non-finite"),
    "missing weights": (("model", "layers.1.weight"), KeyError, "holds weights"),
    "NaN velocity": (("optimizer", "velocity.0"), lambda v: np.full_like(v, np.inf), "non-finite"),
    "infinite last loss": (("last_finite_loss",), float("inf"), "not a finite number"),
    "no rng": (("rng",), KeyError, "random generator"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_tampered_state_is_refused_naming_what_is_wrong(saved, case):
    state, geo = saved
    path, change, message = CASES[case]
    bad = tampered(state, path, change)
    with pytest.raises(CheckpointError, match=message):
        check_trainer_state(bad, geo, source="step-x.npz")


def test_state_of_a_run_with_another_training_set_size_is_refused(saved):
    state, geo = saved
    other = RunGeometry(
        n_train=1000,
        steps_per_epoch=1000 // BATCH,
        validate_every=geo.validate_every,
        parameter_shapes=geo.parameter_shapes,
        dtype=geo.dtype,
    )
    with pytest.raises(CheckpointError, match="training set of 1000"):
        check_trainer_state(state, other)


def test_sample_order_check_accepts_exactly_the_permutations():
    rng = np.random.default_rng(3)
    for n in (1, 2, 17):
        perm = rng.permutation(n)
        checked = check_sample_order(perm, n, "x")
        assert checked.dtype == np.intp and np.array_equal(checked, perm)
    perm = rng.permutation(50)
    with pytest.raises(CheckpointError, match="not a permutation"):
        check_sample_order(np.concatenate([perm[:-1], perm[:1]]), 50, "x")
