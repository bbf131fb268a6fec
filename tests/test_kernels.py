"""The compiled engine (mlpkit.engine.kernels via mlpkit.engine.compiled) computes what the NumPy engine does.

float64 runs of the two engines must agree to rounding (a bound from the sums involved,
tests/tolerances.py) after whole epochs: weights,
momentum buffers, every recorded loss and validation number, for every activation, bias
mode, depth, with and without momentum and with a short last batch. Float32 must stay within
float32 tolerance. Also: the fast tanh's accuracy, divergence, engine selection and that a
call neither leaks memory nor changes results when runs of steps are cut differently.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from mlpkit.core.errors import ConfigError, DivergenceError
from mlpkit.engine import cblas, dense_kernels
from mlpkit.engine.selection import ENV_VAR, compiled_steps
from mlpkit.nn.activations import Activation, sigmoid, sigmoid_derivative
from mlpkit.nn.mlp import MLP
from mlpkit.optim.sgd import SGD
from mlpkit.train.callbacks import Callback, History
from mlpkit.train.trainer import Trainer
from tolerances import float64_run_tolerance, float64_sum_tolerance

ACTIVATIONS = ["sigmoid", "improved_sigmoid", "tanh", "relu"]


def _fit(
    engine,
    activation="tanh",
    bias="input_column",
    momentum=0.9,
    hidden=(12, 9),
    dtype="float64",
    callbacks=(),
    epochs=3,
    lr=0.05,
    n=203,
    batch_size=16,
    segment_steps=None,
):
    rng = np.random.default_rng(5)
    model = MLP(list(hidden), n_features=20, activation=activation, bias=bias, dtype=dtype)
    model.init_weights(rng, "fan_in_normal")
    data = np.random.default_rng(2)
    x = model.prepare_inputs(data.normal(size=(n, 20)))
    y = data.integers(0, 10, n)
    history = History()
    opt = SGD(model.parameters(), lr=lr, momentum=momentum)
    trainer = Trainer(
        model,
        opt,
        rng=rng,
        epochs=epochs,
        batch_size=batch_size,
        drop_last=False,
        validations_per_epoch=2,
        callbacks=[history, *callbacks],
        engine=engine,
    )
    if segment_steps:
        trainer.segment_steps = segment_steps
    trainer.fit(x, y, x[:50], y[:50])
    return trainer, history


def _flat(arrays):
    return np.concatenate([a.ravel() for a in arrays])


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("bias", ["input_column", "per_layer"])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("hidden", [(16,), (12, 9), (8, 7, 6)])
def test_compiled_engine_equals_numpy_engine_in_float64(activation, bias, momentum, hidden):
    runs = {e: _fit(e, activation, bias, momentum, hidden) for e in ("numpy", "compiled")}
    (tn, hn), (tc, hc) = runs["numpy"], runs["compiled"]
    assert (tn.engine_used, tc.engine_used) == ("numpy", "compiled")
    assert tn.state.step == tc.state.step == 3 * 13  # 203 rows, batch 16, short last batch kept
    # the same sums, possibly added in another order: a bound from their size (tests/tolerances.py)
    params, velocity = _flat(tn.model.parameters()), _flat(tn.optimizer.velocity)
    atol = float64_run_tolerance(
        steps=tn.state.step,
        n_terms=max(tn.model.input_width, tn.batch_size),
        momentum=momentum,
        scale=max(np.abs(params).max(), np.abs(velocity).max()),
    )
    np.testing.assert_allclose(_flat(tc.model.parameters()), params, rtol=0, atol=atol)
    np.testing.assert_allclose(_flat(tc.optimizer.velocity), velocity, rtol=0, atol=atol)
    np.testing.assert_allclose(hc.train_loss, hn.train_loss, rtol=0, atol=atol)
    for key in History.VALIDATION_KEYS:
        np.testing.assert_allclose(hc.validation[key], hn.validation[key], rtol=0, atol=atol)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_compiled_float32_stays_within_float32_tolerance_of_float64(activation):
    t32, h32 = _fit("compiled", activation, dtype="float32", epochs=1, lr=0.02)
    t64, h64 = _fit("numpy", activation, dtype="float64", epochs=1, lr=0.02)
    assert t32.model.dtype == np.float32 and t32.engine_used == "compiled"
    np.testing.assert_allclose(h32.train_loss, h64.train_loss, rtol=2e-5)
    np.testing.assert_allclose(_flat(t32.model.parameters()), _flat(t64.model.parameters()), rtol=0, atol=2e-5)


def test_runs_of_steps_cut_differently_give_identical_bits():
    """Runs end at validations, epoch ends and segment_steps; a callback with only on_step_end
    makes every run one step long. None of this may change a single bit."""

    class PerStep(Callback):
        def __init__(self):
            self.steps = []

        def on_step_end(self, trainer, step, loss):
            self.steps.append((step, trainer.state.step))  # the trainer is at this very step

    per_step = PerStep()
    a, ha = _fit("compiled", dtype="float32", callbacks=[per_step])
    b, hb = _fit("compiled", dtype="float32", segment_steps=3)
    c, hc = _fit("compiled", dtype="float32")
    assert all(s == t for s, t in per_step.steps) and len(per_step.steps) == a.state.step
    for other, hist in ((b, hb), (c, hc)):
        assert _flat(other.model.parameters()).tobytes() == _flat(a.model.parameters()).tobytes()
        assert hist.to_dict() == ha.to_dict()


def test_divergence_is_reported_at_the_same_step_by_both_engines():
    steps = {}
    for engine in ("numpy", "compiled"):
        with pytest.raises(DivergenceError) as info:
            _fit(engine, activation="relu", momentum=0.9, dtype="float32", lr=1e6)
        steps[engine] = (info.value.step, info.value.last_finite_loss)
    assert steps["numpy"][0] == steps["compiled"][0] >= 1


def test_engine_selection_and_reasons(monkeypatch):
    trainer, _ = _fit("auto", epochs=1)
    assert trainer.engine_used == "compiled"
    monkeypatch.setenv(ENV_VAR, "numpy")
    trainer, _ = _fit("auto", epochs=1)
    assert trainer.engine_used == "numpy"
    trainer, _ = _fit("compiled", epochs=1)  # an explicit choice beats the environment
    assert trainer.engine_used == "compiled"
    with pytest.raises(ConfigError, match="unknown engine 'fast'"):
        _fit("fast")


def test_compiled_engine_refuses_what_it_cannot_compute_and_auto_falls_back():
    model = MLP([6], n_features=4, n_classes=3)
    model.activation = Activation("my_sigmoid", sigmoid, sigmoid_derivative)
    x = model.prepare_inputs(np.ones((10, 4)))
    y = np.zeros(10, dtype=np.intp)
    opt = SGD(model.parameters(), lr=0.1)
    assert compiled_steps("auto", model, opt, 5, x, y) is None
    with pytest.raises(ConfigError, match="activation 'my_sigmoid' has no compiled kernel"):
        compiled_steps("compiled", model, opt, 5, x, y)
    other = MLP([6], n_features=4, n_classes=3)
    with pytest.raises(ConfigError, match="does not hold the model's parameters"):
        compiled_steps("compiled", other, opt, 5, other.prepare_inputs(np.ones((10, 4))), y)
    plain = MLP([6], n_features=4, n_classes=3)
    plain_opt = SGD(plain.parameters(), lr=0.1)
    x = plain.prepare_inputs(np.ones((10, 4)))
    assert compiled_steps("compiled", plain, plain_opt, 5, x, y) is not None
    with pytest.raises(ConfigError, match="not C-ordered float32"):
        compiled_steps("compiled", plain, plain_opt, 5, np.asfortranarray(x), y)
    with pytest.raises(ConfigError, match="not C-ordered float32"):
        compiled_steps("compiled", plain, plain_opt, 5, x.astype(np.float64), y)


def test_fast_tanh_is_within_5_ulp_of_float64_tanh_and_keeps_specials():
    x = np.concatenate([np.linspace(-12, 12, 400_001), np.random.default_rng(0).normal(scale=3, size=100_000)])
    x = x.astype(np.float32)
    got = x.copy()
    dense_kernels.tanh32(got)
    truth = np.tanh(x.astype(np.float64))
    ulp = np.spacing(np.abs(truth).astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(got - truth) / ulp) <= 5
    assert np.max(np.abs(got - truth)) < 3e-7
    special = np.array([0.0, -0.0, 1e-30, np.inf, -np.inf, np.nan], dtype=np.float32)
    dense_kernels.tanh32(special)
    assert special[0] == 0 and np.signbit(special[1]) and special[2] == np.float32(1e-30)
    assert special[3] == pytest.approx(1, abs=3e-7) and special[4] == pytest.approx(-1, abs=3e-7)
    assert np.isnan(special[5])


def test_add_scaled_gives_the_bits_of_blas_axpy():
    """The seed steps' w -= lr v moved from BLAS's axpy to add_scaled: runs keep their numbers."""
    from numba import njit

    @njit
    def blas_axpy(axpy, alpha, x, y):  # as kernels.train_steps calls it
        axpy(y.shape[0], alpha, x.ctypes.data, 1, y.ctypes.data, 1)

    rng = np.random.default_rng(4)
    x = rng.standard_normal(100_003).astype(np.float32)
    y = rng.standard_normal(100_003).astype(np.float32)
    alpha = np.float32(-0.0137)
    expected = y.copy()
    blas_axpy(cblas.routines("float32")[1], alpha, x, expected)
    assert not np.array_equal(expected, y)
    dense_kernels.add_scaled(y, alpha, x)
    assert np.array_equal(y.view(np.uint32), expected.view(np.uint32))


def test_exp32_is_within_one_ulp_of_exp_on_the_softmax_range():
    x = np.concatenate([np.linspace(-87.3, 0, 400_001), [0.0, -1e-8, -87.33654]]).astype(np.float32)
    got = x.copy()
    dense_kernels.exp32_in_place(got, np.empty(got.size, dtype=np.int32))
    exact = np.exp(x.astype(np.float64))
    ulps = np.abs(got - exact) / np.spacing(exact.astype(np.float32)).astype(np.float64)
    assert ulps.max() <= 1.01
    assert got[-3] == 1  # exp(0) exactly: the row's top adds 1, as with libm
    special = np.array([np.nan, -np.inf, -1e30, 1e30], dtype=np.float32)
    dense_kernels.exp32_in_place(special, np.empty(4, dtype=np.int32))
    assert np.isnan(special[0])
    assert 0 < special[1] == special[2] < 1.2e-38 * 1.01 and np.isfinite(special[3])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_evaluation_loss_matches_a_float64_reference(dtype):
    rng = np.random.default_rng(3)
    for m, k in ((300, 10), (7, 3), (40, 37)):  # 37 classes: more than a vector's lanes
        logits = (rng.standard_normal((m, k)) * 6).astype(dtype)
        labels = rng.integers(0, k, m).astype(np.intp)
        z = logits.astype(np.float64)
        shifted = z - z.max(axis=1, keepdims=True)
        expected = np.sum(np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(m), labels])
        total, hits = dense_kernels.xent_and_hits(logits, labels)
        assert total == pytest.approx(expected, rel=1e-6 if dtype == "float32" else 1e-12)
        assert hits == np.count_nonzero(np.argmax(logits, axis=1) == labels)
    logits[1, 0] = np.nan  # divergence shows in the loss
    assert np.isnan(dense_kernels.xent_and_hits(logits, labels)[0])


def test_accuracy_counts_ties_and_nan_like_argmax():
    logits = np.array(
        [[1, 3, 3, 0], [2, 2, 2, 2], [0, np.nan, 5, 1], [np.nan, 1, 2, 3], [4, 1, 2, 3]], dtype=np.float32
    )
    for labels in ([1, 0, 1, 0, 0], [2, 3, 2, 3, 1]):
        labels = np.array(labels, dtype=np.intp)
        _, hits = dense_kernels.xent_and_hits(logits, labels)
        assert hits == np.count_nonzero(np.argmax(logits, axis=1) == labels)


def test_blas_routines_are_found_and_multiply_correctly():
    for dtype in ("float32", "float64"):
        found = cblas.routines(dtype)
        assert found is not None, f"no CBLAS gemm/axpy for {dtype} in NumPy's BLAS"
    rng = np.random.default_rng(1)
    model = MLP([7], n_features=5, n_classes=3, bias="per_layer", dtype="float64").init_weights(rng)
    x = model.prepare_inputs(rng.normal(size=(300, 5)))
    y = rng.integers(0, 3, 300).astype(np.intp)
    from mlpkit.engine.compiled import CompiledEvaluation

    ev = CompiledEvaluation(model)
    loss_sum, hits = ev(x, y, ev.scratch())  # 300 rows: two blocks, the second short
    loss, acc = model.evaluate(x, y)
    assert loss_sum / 300 == pytest.approx(loss, rel=float64_sum_tolerance(x.shape[1])) and hits / 300 == acc


def test_a_call_of_the_compiled_steps_leaks_nothing():
    rng = np.random.default_rng(7)
    model = MLP([16], n_features=30).init_weights(rng)
    x, y = model.prepare_inputs(rng.normal(size=(64, 30))), rng.integers(0, 10, 64)
    steps = compiled_steps("compiled", model, SGD(model.parameters(), lr=0.01, momentum=0.9), 8, x, y)
    order = np.arange(64)
    for _ in range(50):
        steps.run(order, 0, 1)
    tracemalloc.start()
    try:
        for _ in range(500):  # one-time allocations (Numba's type caches) land in this window
            steps.run(order, 0, 1)
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(2000):
            steps.run(order, 0, 1)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 5_000, grown  # < 2.5 bytes a call (a leak seen once was 140 bytes a call)
