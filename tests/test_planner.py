"""The engine planner's choices, and the NumPy step runner's contract (mlpkit.engine.planner, numpy_steps)."""

from __future__ import annotations

import numpy as np
import pytest

from mlpkit.core.errors import ConfigError
from mlpkit.engine import memory, planner
from mlpkit.engine.compiled import CompiledSteps
from mlpkit.engine.numpy_steps import NumpySteps
from mlpkit.nn.mlp import MLP
from mlpkit.optim.sgd import SGD
from mlpkit.train.callbacks import History
from mlpkit.train.trainer import Trainer


def _data(model, rng, n=200, blank=0.8):
    raw = rng.normal(size=(n, model.n_features))
    raw[rng.random(raw.shape) < blank] = -1.0
    return model.prepare_inputs(raw), rng.integers(0, model.n_classes, n).astype(np.intp)


def test_small_steps_run_compiled_on_one_blas_thread_with_sparse_inputs():
    rng = np.random.default_rng(0)
    model = MLP([16], n_features=40).init_weights(rng)
    x, y = _data(model, rng)
    plan = planner.plan_engine(model, SGD(model.parameters(), lr=0.1), batch_size=8, x_train=x, y_train=y, x_val=x)
    try:
        assert plan.engine == "compiled" and isinstance(plan.steps, CompiledSteps)
        assert plan.sparse_steps and plan.step_threads == 1 and plan.segment_steps == planner.SEGMENT_STEPS
        assert plan.evaluator.compiled and plan.evaluator.sparse_of(x) is not None
    finally:
        plan.close()
    assert plan.evaluator.sparse_of(x) is None and plan.steps.sparse is None  # freed at the end


def test_a_first_layer_narrower_than_a_vector_runs_dense():
    """The sparse kernels work in whole vectors (16 float32 columns): a narrower first layer
    gets no sparse form, and a runner or an evaluation handed one reads the dense inputs."""
    from mlpkit.engine.compiled import CompiledEvaluation
    from mlpkit.engine.sparse import sparse_rows

    rng = np.random.default_rng(3)
    model = MLP([15], n_features=40).init_weights(rng)
    x, y = _data(model, rng)
    plan = planner.plan_engine(model, SGD(model.parameters(), lr=0.1), batch_size=8, x_train=x, y_train=y, x_val=x)
    try:
        assert plan.engine == "compiled" and not plan.sparse_steps and plan.evaluator.sparse_of(x) is None
    finally:
        plan.close()
    form = sparse_rows(x)
    assert form is not None
    steps = CompiledSteps(model, SGD(model.parameters(), lr=0.1), 8, x, y, form)
    assert steps.sparse is None
    evaluation = CompiledEvaluation(model)
    scratch = evaluation.scratch()
    assert evaluation(x, y, scratch, form) == evaluation(x, y, scratch)


def test_numpy_engine_and_what_close_frees(monkeypatch):
    trimmed = []
    monkeypatch.setattr(memory, "trim", lambda: trimmed.append(True) or True)
    rng = np.random.default_rng(1)
    model = MLP([16], n_features=40).init_weights(rng)
    x, y = _data(model, rng)
    plan = planner.plan_engine(
        model, SGD(model.parameters(), lr=0.1), batch_size=8, x_train=x, y_train=y, x_val=x, engine="numpy"
    )
    assert plan.engine == "numpy" and isinstance(plan.steps, NumpySteps) and not plan.sparse_steps
    assert not plan.evaluator.compiled
    plan.close()
    assert trimmed == []  # no sparse form was made, nothing to give back
    plan = planner.plan_engine(model, SGD(model.parameters(), lr=0.1), batch_size=8, x_train=x, y_train=y, x_val=x)
    plan.close()
    assert trimmed == [True]


def test_large_steps_keep_the_blas_threads_and_run_shorter():
    model = MLP([1024, 1024], n_features=784)
    assert planner.step_macs(model, 128) >= planner.SMALL_STEP_MACS
    assert 1 <= planner.segment_steps(model, 128) < 16
    assert planner.segment_steps(MLP([64]), 32) == planner.SEGMENT_STEPS  # the seed's steps: full runs


def test_unknown_or_impossible_engines_are_config_errors():
    rng = np.random.default_rng(2)
    model = MLP([4], n_features=6).init_weights(rng)
    x, y = _data(model, rng, n=20)
    with pytest.raises(ConfigError, match="unknown engine 'gpu'; valid: auto, compiled, numpy"):
        planner.plan_engine(model, SGD(model.parameters(), lr=0.1), batch_size=4, x_train=x, y_train=y, engine="gpu")

    class Other(SGD):
        pass

    with pytest.raises(ConfigError, match="the optimizer is Other"):
        planner.plan_engine(
            model, Other(model.parameters(), lr=0.1), batch_size=4, x_train=x, y_train=y, engine="compiled"
        )


@pytest.mark.parametrize("hidden", [[16], [600, 500]])  # the second: a blocked, two-thread update
def test_numpy_steps_are_model_steps_then_sgd_steps_bit_for_bit(hidden):
    rng = np.random.default_rng(3)
    model = MLP(hidden, n_features=40, bias="per_layer").init_weights(rng, "fan_in_normal")
    twin = MLP(hidden, n_features=40, bias="per_layer")
    twin.load_state_dict(model.state_dict())
    x, y = _data(model, rng, n=100)
    opt, twin_opt = SGD(model.parameters(), lr=0.05, momentum=0.9), SGD(twin.parameters(), lr=0.05, momentum=0.9)
    runner = NumpySteps(model, opt, 16, x, y, workers=2)
    assert (runner.pool is not None) == (hidden == [600, 500])
    order = rng.permutation(100)
    assert runner.run(order, 0, 4) == 4 and runner.run(order, 4, 3) == 3  # 7 steps, the last one of 4 rows
    ws, grads = twin.workspace(16), twin.new_gradients()
    expected = []
    for k in range(7):
        idx = order[k * 16 : (k + 1) * 16]
        expected.append(twin.loss_and_gradients(x[idx], y[idx], ws, grads))
        twin_opt.step(grads)
    assert runner.losses[:3].tolist() == expected[4:]
    assert model.flat_parameters.tobytes() == twin.flat_parameters.tobytes()
    runner.close()


def test_numpy_steps_stop_before_the_update_of_a_non_finite_loss():
    rng = np.random.default_rng(4)
    model = MLP([8], n_features=10, activation="relu").init_weights(rng)
    x, y = _data(model, rng, n=64, blank=0.0)
    x[40] = np.inf  # the sixth batch of 8 in order: infinite logits, a NaN loss
    runner = NumpySteps(model, SGD(model.parameters(), lr=0.1), 8, x, y)
    order = np.arange(64)
    assert runner.run(order, 0, 5) == 5
    before = model.flat_parameters.copy()
    with np.errstate(all="ignore"):
        assert runner.run(order, 5, 3) == 0
    assert not np.isfinite(runner.losses[0]) and np.array_equal(model.flat_parameters, before)


@pytest.mark.parametrize("engine", ["numpy", "compiled"])
def test_runs_cut_differently_give_the_same_bits(engine):
    """One step per call or many: the loop's bookkeeping does not touch the numbers."""
    results = []
    for segment in (1, 5, 512):
        rng = np.random.default_rng(5)
        model = MLP([12], n_features=30, activation="tanh").init_weights(rng, "fan_in_normal")
        x, y = _data(model, np.random.default_rng(6), n=150)
        history = History()
        trainer = Trainer(
            model,
            SGD(model.parameters(), lr=0.05, momentum=0.9),
            rng=rng,
            epochs=2,
            batch_size=16,
            drop_last=False,
            validations_per_epoch=3,
            callbacks=[history],
            engine=engine,
        )
        trainer.segment_steps = segment
        trainer.fit(x, y, x[:60], y[:60])
        assert trainer.engine_used == engine
        results.append((model.flat_parameters.tobytes(), history.to_dict()))
    assert results[0] == results[1] == results[2]
