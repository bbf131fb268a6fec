"""The compiled steps with the modern options (engine.option_steps / option_kernels) against the
NumPy reference (engine.numpy_steps) in float64: dropout masks from the same generator in the same
order, label smoothing, SGD (Nesterov, weight decay), Adam, AdamW, a per-step schedule, clipping
and max-norm, dense and sparse first layers, a short last batch, runs cut anywhere."""

from __future__ import annotations

import numpy as np
import pytest

from mlpkit.engine.numpy_steps import NumpySteps
from mlpkit.engine.option_steps import CompiledOptionSteps
from mlpkit.engine.sparse import sparse_rows
from mlpkit.engine.step_options import StepOptions
from mlpkit.nn.dropout import Dropout
from mlpkit.nn.mlp import MLP
from mlpkit.optim.registry import make_optimizer, make_schedule

N, FEATURES, CLASSES, BATCH = 100, 20, 5, 16  # 100 = 6 x 16 + 4: the epoch's last batch is short
RUNS = [(0, 2), (2, 3), (5, 2)]  # (first step, steps) of each call: all 7 steps, the short one last

OPTIMIZERS = {
    "adamw": dict(lr=0.01, weight_decay=0.05),
    "adam": dict(lr=0.01, weight_decay=0.01),
    "sgd": dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "plain_sgd": dict(lr=0.05, momentum=0.9),
}
OPTIONS = {
    "none": {},
    "dropout+smoothing+schedule": dict(input_rate=0.2, hidden_rate=0.3, smoothing=0.1, schedule=True),
    "clip+max_norm+hidden_dropout+schedule": dict(clip=0.5, max_norm=0.8, hidden_rate=0.2, schedule=True),
}


def problem(optimizer: str, options: dict, *, bias: str, dtype: str = "float64", blank: bool = False):
    rng = np.random.default_rng(0)
    model = MLP([16, 12], n_features=FEATURES, n_classes=CLASSES, activation="relu", bias=bias, dtype=dtype)
    model.init_weights(rng, "he_normal")
    raw = rng.normal(size=(N, FEATURES))
    if blank:  # mostly one value per column, as MNIST's blank pixels: the sparse form applies
        raw[rng.random(raw.shape) < 0.8] = 0.0
    x, y = model.prepare_inputs(raw), rng.integers(0, CLASSES, N).astype(np.intp)
    opt = make_optimizer(optimizer.removeprefix("plain_"), model.parameters(), **OPTIMIZERS[optimizer])
    schedule = make_schedule("cosine_warmup", opt, warmup_steps=3, total_steps=30) if options.get("schedule") else None
    step_options = StepOptions(
        dropout=Dropout(input_rate=options.get("input_rate", 0.0), hidden_rate=options.get("hidden_rate", 0.0)),
        label_smoothing=options.get("smoothing", 0.0),
        clip_norm=options.get("clip"),
        max_norm=options.get("max_norm"),
        schedule=schedule,
    )
    return model, opt, step_options, x, y


def train(engine: str, optimizer: str, options: dict, **kw):
    model, opt, o, x, y = problem(optimizer, options, **kw)
    rng = np.random.default_rng(5)
    if engine == "numpy":
        runner = NumpySteps(
            model,
            opt,
            BATCH,
            x,
            y,
            dropout=o.dropout,
            rng=rng,
            label_smoothing=o.label_smoothing,
            clip_norm=o.clip_norm,
            schedule=o.schedule,
            max_norm=o.max_norm,
        )
    else:
        sparse = sparse_rows(x) if kw.get("blank") else None
        runner = CompiledOptionSteps(model, opt, BATCH, x, y, sparse, o, rng)
        assert (runner.sparse is not None) == (sparse is not None and not options.get("input_rate"))
    order = np.random.default_rng(1).permutation(N)
    losses = []
    for first, n in RUNS:
        assert runner.run(order, first, n) == n
        losses += list(runner.losses[:n])
    return model.flat_parameters.copy(), np.array(losses), rng.bit_generator.state, opt


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("options", list(OPTIONS))
@pytest.mark.parametrize("bias", ["per_layer", "input_column"])
def test_compiled_option_steps_equal_the_numpy_reference_in_float64(optimizer, options, bias):
    ref = train("numpy", optimizer, OPTIONS[options], bias=bias)
    got = train("compiled", optimizer, OPTIONS[options], bias=bias)
    scale = np.abs(ref[0]).max()
    np.testing.assert_allclose(got[0], ref[0], rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-12)
    assert got[2] == ref[2]  # the same draws from the training loop's generator: resumes stay exact
    assert got[3].lr == ref[3].lr and getattr(got[3], "steps", 0) == getattr(ref[3], "steps", 0)


@pytest.mark.parametrize("options", ["none", "clip+max_norm+hidden_dropout+schedule"])
def test_the_sparse_first_layer_gives_the_same_steps(options):
    ref = train("numpy", "adamw", OPTIONS[options], bias="per_layer", blank=True)
    got = train("compiled", "adamw", OPTIONS[options], bias="per_layer", blank=True)
    np.testing.assert_allclose(got[0], ref[0], rtol=0, atol=1e-12 * np.abs(ref[0]).max())
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-12)


def test_float32_stays_within_float32_tolerance_of_float64():
    options = dict(smoothing=0.1, schedule=True, clip=0.5, max_norm=0.8)  # no dropout: its draws depend on the dtype
    ref = train("numpy", "adamw", options, bias="per_layer", dtype="float64")
    got = train("compiled", "adamw", options, bias="per_layer", dtype="float32")
    np.testing.assert_allclose(got[0], ref[0], rtol=0, atol=1e-4 * np.abs(ref[0]).max())
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-5)


def test_float32_dropout_draws_are_numpys_draws():
    """Float32 masks come from a compiled copy of PCG64 filling a run's full steps at once: the
    same numbers in the same order as the NumPy engine's per-layer draws (the generator ends in
    the same state, the masks select the same units), the short last step's too."""
    options = dict(input_rate=0.2, hidden_rate=0.3, smoothing=0.1)
    ref = train("numpy", "adamw", options, bias="per_layer", dtype="float32")
    got = train("compiled", "adamw", options, bias="per_layer", dtype="float32")
    assert got[2] == ref[2]
    np.testing.assert_allclose(got[0], ref[0], rtol=0, atol=1e-4 * np.abs(ref[0]).max())
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-5)


def test_the_options_change_the_steps():
    """The equality above is not vacuous: each option moves the weights."""
    base = train("compiled", "adamw", {}, bias="per_layer")[0]
    for options in OPTIONS.values():
        if options:
            assert np.abs(train("compiled", "adamw", options, bias="per_layer")[0] - base).max() > 1e-3


def test_a_non_finite_loss_stops_the_run_before_its_update():
    model, opt, o, x, y = problem("adam", {}, bias="per_layer")
    x[3] = np.inf
    runner = CompiledOptionSteps(model, opt, BATCH, x, y, None, o, None)
    order = np.arange(N, dtype=np.intp)
    before = model.flat_parameters.copy()
    assert runner.run(order, 0, 3) == 0 and not np.isfinite(runner.losses[0])
    np.testing.assert_array_equal(model.flat_parameters, before)
    assert opt.steps == 0


def test_dropout_needs_the_generator_and_order_rows_are_checked():
    model, opt, o, x, y = problem("adam", OPTIONS["dropout+smoothing+schedule"], bias="per_layer")
    with pytest.raises(ValueError, match="rng"):
        CompiledOptionSteps(model, opt, BATCH, x, y, None, o, None)
    runner = CompiledOptionSteps(model, opt, BATCH, x, y, None, o, np.random.default_rng(0))
    with pytest.raises(IndexError):
        runner.run(np.full(N, N, dtype=np.intp), 0, 1)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_buffers_the_vector_loops_read_start_on_a_cache_line(dtype):
    """The gradient and scratch buffers start on 64 bytes, as the parameters do (a 512-bit load
    across two cache lines costs ~1.7x; np.zeros_like of a large buffer starts 16 bytes past one)."""
    model, opt, o, x, y = problem("adamw", OPTIONS["none"], bias="per_layer", dtype=dtype, blank=True)
    runner = CompiledOptionSteps(model, opt, BATCH, x, y, sparse_rows(x), o, None)
    for buffer in (runner._params, *runner._opt, runner._work[2]):
        assert buffer.ctypes.data % 64 == 0
