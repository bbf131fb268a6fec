"""The cold-start helper process (mlpkit.engine.precompile) and the cache lock it relies on.

The helper compiles ``forward`` and ``evaluate_rows`` into the kernel cache while the training
process compiles ``train_steps``' other callees; that only saves time if the argument types
written down here are the ones ``train_steps`` really calls them with, so that is checked
against a fresh compilation. Any failure of the helper leaves the run compiling on its own.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from numba import njit, typeof

from mlpkit.engine import entry_points, kernel_cache, kernels, precompile
from mlpkit.engine.compiled import CompiledEvaluation, CompiledSteps, sparse_arguments
from mlpkit.engine.dense_kernels import FAST
from mlpkit.nn.mlp import MLP
from mlpkit.optim.sgd import SGD


def _steps(dtype=np.float32):
    model = MLP([16], n_features=12, n_classes=3, activation="tanh", dtype=dtype)
    model.init_weights(np.random.default_rng(0), "fan_in_normal")
    x = model.prepare_inputs(np.random.default_rng(1).normal(size=(20, 12)))
    y = np.arange(20) % 3
    return CompiledSteps(model, SGD(model.parameters(), lr=0.1, momentum=0.9), 4, x, y)


def test_the_written_down_argument_types_are_those_train_steps_calls_with():
    steps = _steps()
    dtype, gemm = steps.model.dtype, steps._gemm
    callees = precompile.training_callees(dtype, gemm)
    for kernel, signature in callees:
        kernel.compile(signature)
    before = {kernel: set(kernel.signatures) for kernel, _ in callees}
    forward, gradient = steps._signatures()
    assert forward == precompile.forward_signature(dtype, gemm)  # what the helper compiles
    assert gradient == entry_points.gradient_signature(dtype, typeof(sparse_arguments(None, dtype)))
    fresh = njit(**FAST)(kernels.train_steps.py_func)  # typed anew, not loaded from the cache
    stand_ins = (entry_points.signature_value(forward), entry_points.signature_value(gradient))
    fresh.compile(tuple(typeof(a) for a in steps._arguments(np.arange(20), *stand_ins)))
    for kernel, signature in callees:
        assert set(kernel.signatures) == before[kernel], f"{kernel.py_func.__name__} was compiled again"
        assert tuple(signature) in kernel.signatures


def test_the_evaluation_types_known_before_the_model_are_those_of_the_model():
    steps = _steps()
    evaluation = CompiledEvaluation(steps.model)
    assert precompile.evaluate_signature(steps.model.dtype, steps._gemm) == evaluation.argument_types(steps.x)
    read_only = steps.x.copy()
    read_only.flags.writeable = False  # another type: the helper's evaluate_rows would not serve it
    assert precompile.evaluate_signature(steps.model.dtype, steps._gemm) != evaluation.argument_types(read_only)


def test_the_helper_compiles_forward_and_evaluate_rows_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))  # the helper's cache, not this process's
    monkeypatch.setattr(precompile, "_is_cached", lambda dispatcher: False)
    monkeypatch.setattr(precompile, "_cpus", lambda: 2)
    steps = _steps()
    evaluation = CompiledEvaluation(steps.model)
    helper = precompile.start(steps.model.dtype, steps._gemm, evaluation.argument_types(steps.x), 16)
    assert helper is not None
    try:
        assert helper.wait_for("forward") and helper.wait_for("evaluate_rows")
    finally:
        helper.close()
    files = [p.name for p in tmp_path.rglob("*.nbi")]
    names = {name.split("-")[0] for name in files}
    assert {"kernels.evaluate_rows", "sparse_kernels.narrow_sparse_product"} <= names  # 16 units: narrow
    assert "sparse_kernels.sparse_product" not in names
    assert {f"dense_kernels.{name}" for name in precompile.HELPER_CALLEES} <= names
    assert any(name.startswith("kernels.narrow_forward-") and "-entry." in name for name in files)  # C-callable
    assert "kernels.train_steps" not in names  # this process's part
    assert list(tmp_path.rglob(kernel_cache.LOCK_NAME)), "entries are written under the folder's lock"


def test_a_helper_started_early_is_taken_when_it_compiles_what_the_run_needs(monkeypatch):
    launched = []

    class _Started:
        def __init__(self, dtype, evaluate):
            self.dtype, self.evaluate, self.closed = dtype, evaluate, False

        def matches(self, dtype, evaluate, first_width):
            return dtype == self.dtype and (evaluate is None or evaluate == self.evaluate) and first_width == 16

        def close(self):
            self.closed = True

    def launch(dtype, gemm, evaluate, first_width):
        launched.append(_Started(dtype, evaluate))
        return launched[-1]

    monkeypatch.setattr(precompile, "_launch", launch)
    monkeypatch.setattr(precompile, "_early", None)
    steps = _steps()
    evaluate = CompiledEvaluation(steps.model).argument_types(steps.x)
    precompile.prestart("float32", 16)
    assert len(launched) == 1 and launched[0].evaluate == evaluate
    assert precompile.start(steps.model.dtype, steps._gemm, evaluate, 16) is launched[0]  # taken, not a second one
    assert precompile.start(steps.model.dtype, steps._gemm, evaluate, 16) is launched[1]  # taken only once
    precompile.prestart("float32", 16)
    float64 = _steps(np.float64)
    assert precompile.start(float64.model.dtype, float64._gemm, None, 16) is launched[3]  # another dtype: a new one
    assert launched[2].closed and not launched[3].closed
    precompile.prestart("float32", 16)
    assert precompile.start(steps.model.dtype, steps._gemm, evaluate, 1024) is launched[5]  # another forward
    assert launched[4].closed


def test_no_helper_on_one_cpu_or_a_warm_cache(monkeypatch):
    steps = _steps()
    monkeypatch.setattr(precompile, "_is_cached", lambda dispatcher: False)
    monkeypatch.setattr(precompile, "_cpus", lambda: 1)
    assert precompile.start(steps.model.dtype, steps._gemm, None, 16) is None
    monkeypatch.setattr(precompile, "_cpus", lambda: 2)
    monkeypatch.setattr(precompile, "_is_cached", lambda dispatcher: True)
    assert precompile.start(steps.model.dtype, steps._gemm, None, 16) is None


def test_a_helper_that_dies_is_not_waited_for():
    process = subprocess.Popen([sys.executable, "-c", "print('forward', flush=True)"], stdout=subprocess.PIPE)
    helper = precompile.Helper(process)
    assert helper.wait_for("forward")
    assert not helper.wait_for("evaluate_rows", timeout=30)  # the helper exited without it
    helper.close()


def test_a_silent_helper_is_waited_for_only_so_long():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], stdout=subprocess.PIPE)
    helper = precompile.Helper(process)
    try:
        assert not helper.wait_for("forward", timeout=0.2)
        assert not helper.wait_for("evaluate_rows")  # given up on: no second wait
    finally:
        helper.close()
    assert process.poll() is not None


def test_the_cache_lock_is_exclusive_for_writes(tmp_path):
    fcntl = pytest.importorskip("fcntl")
    with kernel_cache._locked(str(tmp_path), exclusive=True):
        with open(tmp_path / kernel_cache.LOCK_NAME) as other:
            with pytest.raises(BlockingIOError):
                fcntl.flock(other, fcntl.LOCK_SH | fcntl.LOCK_NB)
    with kernel_cache._locked(str(tmp_path), exclusive=False):
        with open(tmp_path / kernel_cache.LOCK_NAME) as other:
            fcntl.flock(other, fcntl.LOCK_SH | fcntl.LOCK_NB)  # readers share it


class _FakeHelper:
    def __init__(self):
        self.calls = []

    def compile_training_callees(self):
        self.calls.append("callees")

    def wait_for_callees(self):
        self.calls.append("helper's callees")

    def wait_for(self, name, timeout=precompile.WAIT_S):
        self.calls.append(name)
        return False  # as if the helper had failed: everything compiles here

    def close(self):
        self.calls.append("close")


def test_the_planner_shares_the_work_with_the_helper_and_closes_it(monkeypatch):
    from mlpkit.engine.planner import plan_engine

    fake = _FakeHelper()
    started = []

    def start(dtype, gemm, evaluate_signature, first_width):
        started.append((evaluate_signature, first_width))
        return fake

    monkeypatch.setattr(precompile, "start", start)
    steps = _steps()
    x, y = steps.x, steps.y
    plan = plan_engine(steps.model, steps.optimizer, batch_size=4, x_train=x, y_train=y, x_val=x, engine="compiled")
    assert plan.engine == "compiled" and fake.calls == ["callees", "helper's callees", "forward"]
    assert started[0] == (CompiledEvaluation(steps.model).argument_types(x), 16)
    plan.evaluator.evaluate(x, y)
    plan.evaluator.evaluate(x, y)
    assert fake.calls[-1] == "evaluate_rows" and fake.calls.count("evaluate_rows") == 1  # before the first chunk
    plan.close()
    assert fake.calls[-1] == "close"


def test_no_helper_for_the_numpy_engine(monkeypatch):
    from mlpkit.engine.planner import plan_engine

    monkeypatch.setattr(precompile, "start", lambda *a: pytest.fail("no helper for NumPy steps"))
    steps = _steps()
    plan = plan_engine(steps.model, steps.optimizer, batch_size=4, x_train=steps.x, y_train=steps.y, engine="numpy")
    assert plan.engine == "numpy"
    plan.close()


class _RecordingHelper(_FakeHelper):
    def matches(self, dtype, evaluate, first_width):
        return True


@pytest.mark.parametrize("engine", ["auto", "numpy"])
def test_a_run_starts_the_helper_before_it_reads_its_data(mnist_path, tmp_path, monkeypatch, engine):
    from mlpkit.workflows import experiment
    from mlpkit.workflows.configs import resolve_config

    events, helper = [], _RecordingHelper()
    read_data = experiment.experiment_data

    def launch(dtype, gemm, evaluate, first_width):
        events.append(
            ("launch", np.dtype(dtype).name, evaluate == precompile.evaluate_signature(dtype, gemm), first_width)
        )
        return helper

    def data(*args, **kwargs):
        events.append(("data",))
        return read_data(*args, **kwargs)

    monkeypatch.setattr(precompile, "_launch", launch)
    monkeypatch.setattr(precompile, "_early", None)
    monkeypatch.setattr(experiment, "experiment_data", data)
    cfg = resolve_config("task3c", ["epochs=1", "n_train=640", "data.n_val=200", f"train.engine={engine}"])
    experiment.run_experiment(cfg, tmp_path / "run", data_dir=mnist_path)
    if engine == "numpy":
        assert events == [("data",)]  # no compiled kernels: no helper
    else:
        assert events == [("launch", "float32", True, cfg.model.hidden[0]), ("data",)]  # one helper, started first ...
        assert helper.calls[:2] == ["callees", "helper's callees"]  # ... and taken
        assert helper.calls[-1] == "close"
