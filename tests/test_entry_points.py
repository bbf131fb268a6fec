"""Kernels called through their address (mlpkit.engine.entry_points).

``forward`` and the sparse weight gradient are compiled once as C-callable kernels with cache
entries of their own; the kernels that call them report a failure of theirs (a C callback cannot
raise) as one error, with nothing applied. That the results are those of the NumPy engine is
checked in tests/test_kernels.py and tests/test_sparse.py, which run through these entry points.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from mlpkit.engine import entry_points, kernels
from mlpkit.engine.compiled import CompiledEvaluation, CompiledSteps
from mlpkit.engine.sparse import sparse_rows
from mlpkit.nn.mlp import MLP
from mlpkit.optim.sgd import SGD


def _model():
    model = MLP([16], n_features=40, n_classes=3, activation="relu")
    model.init_weights(np.random.default_rng(0), "fan_in_normal")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(24, 40)) * (rng.random((24, 40)) < 0.2)  # mostly zero: a sparse form pays
    return model, model.prepare_inputs(x), np.arange(24) % 3


def test_an_entry_point_is_made_once_per_signature():
    model, x, _ = _model()
    evaluation = CompiledEvaluation(model)
    dense = evaluation.forward_signature(x, evaluation._dense)
    first = entry_points.entry_point(kernels.forward, dense)
    assert entry_points.entry_point(kernels.forward, dense) is first
    assert first.signature() == dense and first.__wrapper_address__() > 0


def test_a_failing_forward_stops_the_steps_with_one_error_and_nothing_applied(monkeypatch):
    model, x, y = _model()
    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)
    steps = CompiledSteps(model, optimizer, 8, x, y, sparse_rows(x))
    before = model.flat_parameters.copy()
    monkeypatch.setattr(steps, "_forward", lambda: entry_points.signature_value(steps._signatures()[0]))
    with pytest.raises(MemoryError, match="compiled step"):
        steps.run(np.arange(24), 0, 3)
    np.testing.assert_array_equal(model.flat_parameters, before)


def test_a_failing_sparse_gradient_stops_the_steps_with_one_error(monkeypatch):
    model, x, y = _model()
    steps = CompiledSteps(model, SGD(model.parameters(), lr=0.1), 8, x, y, sparse_rows(x))
    assert steps.run(np.arange(24), 0, 1) == 1  # the real one runs
    failing = CompiledSteps(model, SGD(model.parameters(), lr=0.1), 8, x, y, sparse_rows(x))
    monkeypatch.setattr(failing, "_gradient", lambda: entry_points.signature_value(failing._signatures()[1]))
    with pytest.raises(MemoryError):
        failing.run(np.arange(24), 1, 2)


def test_a_failing_forward_stops_an_evaluation_with_one_error(monkeypatch):
    model, x, y = _model()
    evaluation = CompiledEvaluation(model)
    scratch = evaluation.scratch()
    good = evaluation(x, np.ascontiguousarray(y, dtype=np.intp), scratch)
    assert np.isfinite(good[0]) and 0 <= good[1] <= len(y)
    monkeypatch.setattr(entry_points, "entry_point", lambda kernel, signature: entry_points.signature_value(signature))
    failing = CompiledEvaluation(model)  # (a runner looks its entry points up once)
    with pytest.raises(MemoryError):
        failing(x, np.ascontiguousarray(y, dtype=np.intp), scratch)


_COMPILE_ONE = """
import numpy as np
from mlpkit.engine import cblas, entry_points, kernels, precompile
dtype = np.dtype(np.float32)
entry = entry_points.entry_point(kernels.forward, precompile.forward_signature(dtype, cblas.gemm("float32")))
print(entry._keep.cache_hits)
"""


def test_entry_points_are_cached_apart_from_the_kernels(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    runs = [subprocess.run([sys.executable, "-c", _COMPILE_ONE], env=env, capture_output=True, text=True) for _ in "ab"]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr[-2000:]
    assert [r.stdout.strip() for r in runs] == ["0", "1"]  # compiled, then loaded from the cache
    files = sorted(p.name for p in tmp_path.rglob("kernels.forward-*.nbi"))
    assert len(files) == 1 and "-entry." in files[0]  # not the compiled kernel's own entries
