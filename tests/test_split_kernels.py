"""The sparse first layer split over threads (engine/split_kernels.py) and OpenBLAS's short idle
spin it relies on (core/blas_env.py): the split kernels give the one-thread kernels' bits, the
runners give the same weights with or without the split, the planner splits only when it pays."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import numpy as np
import pytest

from mlpkit.core import blas_env
from mlpkit.engine import cblas, dense_kernels, planner, sparse_kernels, split_kernels, threads
from mlpkit.engine.compiled import CompiledSteps, sparse_arguments
from mlpkit.engine.option_steps import CompiledOptionSteps
from mlpkit.engine.simd import TILE_VECTORS
from mlpkit.engine.sparse import sparse_rows
from mlpkit.engine.step_options import StepOptions
from mlpkit.nn.dropout import Dropout
from mlpkit.nn.mlp import MLP
from mlpkit.optim.adam import AdamW
from mlpkit.optim.sgd import SGD
from mlpkit.train.trainer import Trainer


def _mostly_blank(rng, n, features, blank=0.8, value=-1.5):
    x = rng.normal(size=(n, features))
    x[rng.random((n, features)) < blank] = value
    return x


@pytest.mark.parametrize("width", [8, 16])
@pytest.mark.parametrize("n", [1, 15, 63, 64, 65, 100, 128, 137, 200, 250, 256, 1000, 1024])
@pytest.mark.parametrize("pieces", [2, 3, 4, 8])
def test_column_pieces_start_at_tiles_and_keep_an_overlapping_last_tile_with_the_one_before(width, n, pieces):
    bounds = sparse_kernels.column_pieces(n, width, pieces)
    tile_w = TILE_VECTORS * width
    assert len(bounds) == pieces + 1 and bounds[0] == 0 and bounds[-1] == n
    assert np.all(np.diff(bounds) >= 0)
    last_tile = (n // tile_w) * tile_w if n % tile_w else n
    _, _, last, _ = sparse_kernels.tile(n, last_tile, width) if last_tile < n else (0, 0, 0, 0)
    for b in bounds[1:-1]:
        assert b % tile_w == 0 or b == n
        if last < 0:  # the partial tile reaches back: no range may start at it
            assert b != last_tile
    if n >= pieces * 2 * tile_w:  # wide rows: every thread gets work
        assert np.all(np.diff(bounds) > 0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [17, 40, 100, 137, 200, 256, 300, 1000])
@pytest.mark.parametrize("pieces", [2, 3])
def test_split_products_give_the_one_thread_bits(dtype, n, pieces):
    rng = np.random.default_rng(n + pieces)
    x = _mostly_blank(rng, 50, 300).astype(dtype)
    sp = sparse_rows(x, block=128)  # three blocks
    one, split = sparse_arguments(sp, np.dtype(dtype)), sparse_arguments(sp, np.dtype(dtype), pieces)
    assert len(one) == 5 and len(split) == 6
    fan_in, w_off = x.shape[1], 5
    params = rng.normal(size=w_off + fan_in * n + 3).astype(dtype)
    consts = dense_kernels.constants(np.dtype(dtype))
    gemm = cblas.gemm(dtype)
    rows = np.array([44, 0, 7, 7, 30, 12, 49], dtype=np.intp)
    want, got = (np.full((len(rows), n), np.nan, dtype=dtype) for _ in range(2))
    sparse_kernels.sparse_product(gemm, one, rows, 0, len(rows), params, w_off, fan_in, n, want, consts)
    with split_kernels.split_threads(pieces):
        split_kernels.split_product(gemm, split, rows, 0, len(rows), params, w_off, fan_in, n, got, consts)
    assert np.array_equal(got, want)
    w = params[w_off : w_off + fan_in * n].reshape(fan_in, n)
    assert np.allclose(want, x[rows].astype(np.float64) @ w, atol=1e-3)

    delta = rng.normal(size=(len(rows), n)).astype(dtype)
    alpha, beta = np.dtype(dtype).type(-0.05), np.dtype(dtype).type(0.9)
    want_w, got_w = params.copy(), params.copy()
    sparse_kernels.sparse_weight_gradient(one, rows, len(rows), delta, want_w, w_off, fan_in, n, alpha, beta, consts)
    with split_kernels.split_threads(pieces):
        split_kernels.split_weight_gradient(split, rows, len(rows), delta, got_w, w_off, fan_in, n, alpha, beta, consts)
    assert np.array_equal(got_w, want_w)
    assert not np.array_equal(want_w, params)


def _large_run(runner_kind, split, steps=9, dtype="float32"):
    rng = np.random.default_rng(3)
    model = MLP([400, 40], n_features=200, activation="relu", bias="per_layer", dtype=dtype)  # 80,400 + 16,040
    model.init_weights(rng, "fan_in_normal")
    data = np.random.default_rng(4)
    x = model.prepare_inputs(_mostly_blank(data, 256, 200))
    y = data.integers(0, 10, 256).astype(np.intp)
    sp = sparse_rows(x, block=128)  # two blocks
    order = data.permutation(256).astype(np.int64)
    if runner_kind == "sgd":
        opt = SGD(model.parameters(), lr=0.05, momentum=0.9)
        runner = CompiledSteps(model, opt, 16, x, y, sp, split)
    else:
        opt = AdamW(model.parameters(), lr=1e-3)
        options = StepOptions(dropout=Dropout(hidden_rate=0.2), label_smoothing=0.1)
        runner = CompiledOptionSteps(model, opt, 16, x, y, sp, options, np.random.default_rng(9), split)
    assert runner.split == split
    assert runner.run(order, 0, steps) == steps
    return np.concatenate([p.ravel() for p in model.parameters()]), runner.losses[:steps].copy()


@pytest.mark.parametrize("runner_kind", ["sgd", "adamw"])
def test_runners_give_the_same_weights_with_the_first_layer_split(runner_kind):
    """(AdamW also splits its update of the first layer: more than SPLIT_UPDATE_MIN parameters.)"""
    assert 200 * 400 + 400 >= split_kernels.SPLIT_UPDATE_MIN > 400 * 40 + 40
    want_params, want_losses = _large_run(runner_kind, 1)
    got_params, got_losses = _large_run(runner_kind, 2)
    assert np.array_equal(got_params, want_params) and np.array_equal(got_losses, want_losses)


def _two_threads(monkeypatch):
    monkeypatch.setattr(threads.BlasThreads, "threads", lambda self: 2)
    monkeypatch.setattr(threads.BlasThreads, "limit", lambda self, n: contextlib.nullcontext())


def _planned_split(hidden):
    rng = np.random.default_rng(0)
    model = MLP(hidden, n_features=200, activation="relu", bias="per_layer", dtype="float32")
    model.init_weights(rng, "fan_in_normal")
    x = model.prepare_inputs(_mostly_blank(np.random.default_rng(1), 512, 200))
    y = rng.integers(0, 10, 512)
    plan = planner.plan_engine(model, SGD(model.parameters(), lr=0.01), batch_size=128, x_train=x, y_train=y)
    try:
        return plan.sparse_steps, getattr(plan.steps, "split", None)
    finally:
        plan.close()


def test_planner_splits_wide_first_layers_on_several_threads_with_a_short_blas_spin(monkeypatch):
    _two_threads(monkeypatch)
    monkeypatch.setattr(planner, "SMALL_STEP_MACS", 0)
    monkeypatch.setattr(blas_env, "short_spin", lambda: True)
    assert _planned_split([300]) == (True, 2)
    assert _planned_split([100]) == (False, 1)  # narrower than SPLIT_COLUMNS: dense BLAS
    monkeypatch.setattr(blas_env, "short_spin", lambda: False)
    assert _planned_split([300]) == (False, 1)  # OpenBLAS spins long: the split would not pay


def test_trainer_runs_the_split_first_layer_to_the_one_thread_result(monkeypatch):
    def fit(split_ok):
        monkeypatch.setattr(blas_env, "short_spin", lambda: split_ok)
        rng = np.random.default_rng(5)
        model = MLP([300], n_features=200, activation="relu", bias="per_layer", dtype="float32")
        model.init_weights(rng, "fan_in_normal")
        data = np.random.default_rng(6)
        x = model.prepare_inputs(_mostly_blank(data, 200, 200))
        y = data.integers(0, 10, 200)
        trainer = Trainer(model, SGD(model.parameters(), lr=0.05, momentum=0.9), rng=rng, epochs=2, batch_size=32)
        trainer.fit(x, y, x[:50], y[:50])
        assert trainer.sparse_used
        return np.concatenate([p.ravel() for p in model.parameters()])

    calls = []
    real = split_kernels.split_threads

    def counted(pieces):
        calls.append(pieces)
        return real(pieces)

    monkeypatch.setattr(split_kernels, "split_threads", counted)
    monkeypatch.setattr(planner, "SMALL_STEP_MACS", 0)
    _two_threads(monkeypatch)
    split = fit(True)
    assert calls and set(calls) == {2}
    calls.clear()
    monkeypatch.setattr(threads.BlasThreads, "threads", lambda self: 1)  # one thread: sparse, not split
    assert np.array_equal(split, fit(False))
    assert not calls


def _spin_after_import(code, env_value=None):
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    if env_value is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = env_value
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_import_mlpkit_asks_openblas_for_a_short_spin_before_numpy_loads():
    report = (
        "import os; from mlpkit.core import blas_env; "
        "print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'), blas_env.short_spin())"
    )
    assert _spin_after_import("import mlpkit, numpy; " + report) == [blas_env.SHORT_SPIN, "True"]
    assert _spin_after_import("import numpy, mlpkit; " + report) == ["None", "False"]  # too late: not set
    assert _spin_after_import("import mlpkit; " + report, "20") == ["20", "False"]  # the user's value stays
    assert _spin_after_import("import numpy, mlpkit; " + report, "6") == ["6", "True"]


def test_the_threading_layer_is_openmp_with_passive_waiting_unless_the_user_chose():
    code = (
        "import os, mlpkit, numba; from mlpkit.engine import split_kernels; "
        "print(os.environ.get('OMP_WAIT_POLICY'), numba.config.THREADING_LAYER_PRIORITY[0])"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "NUMBA_THREADING_LAYER")}
    run = lambda extra: subprocess.run(
        [sys.executable, "-c", code], env={**env, **extra}, capture_output=True, text=True, timeout=120
    ).stdout.split()
    assert run({}) == ["PASSIVE", "omp"]
    assert run({"OMP_WAIT_POLICY": "ACTIVE"}) == ["ACTIVE", "workqueue"]  # spinning OpenMP: not chosen
    assert run({"NUMBA_THREADING_LAYER": "workqueue"})[0] == "None"  # the user's layer: nothing set
