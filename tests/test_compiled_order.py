"""The compiled step runner indexes the training arrays with the sample order unchecked inside
the kernel, so its ``run`` refuses any order whose rows for the asked steps are out of bounds
(issue 11: a tampered order used to make the kernel read past the array, a segfault)."""

from __future__ import annotations

import numpy as np
import pytest

from mlpkit.engine.compiled import CompiledSteps
from mlpkit.nn.mlp import MLP
from mlpkit.optim.sgd import SGD

N, BATCH = 40, 8


@pytest.fixture(scope="module")
def steps() -> CompiledSteps:
    rng = np.random.default_rng(2)
    model = MLP([6], n_features=5, n_classes=3, activation="tanh").init_weights(rng)
    x = model.prepare_inputs(rng.normal(size=(N, 5)))
    return CompiledSteps(model, SGD(model.parameters(), lr=0.01), BATCH, x, rng.integers(0, 3, N))


@pytest.mark.parametrize(
    "order, first, n, message",
    [
        (np.where(np.arange(N) == 3, N, np.arange(N)), 0, 1, "indices outside 0..39"),
        (np.where(np.arange(N) == 3, 10**12, np.arange(N)), 0, 5, "indices outside"),
        (np.where(np.arange(N) == 17, -1, np.arange(N)), 2, 1, "indices outside"),
        (np.arange(N), 5, 1, "not in a sample order of 40"),
        (np.arange(N), -1, 1, "not in a sample order"),
        (np.arange(N).astype(np.int32), 0, 1, "1-D intp array"),
        (np.arange(N).astype(float), 0, 1, "1-D intp array"),
    ],
)
def test_out_of_bounds_orders_are_refused_before_the_kernel(steps, order, first, n, message) -> None:
    before = steps.model.flat_parameters.copy()
    with pytest.raises(IndexError, match=message):
        steps.run(order, first, n)
    assert np.array_equal(steps.model.flat_parameters, before)  # no step was taken


def test_only_the_rows_the_steps_read_are_checked(steps) -> None:
    order = np.arange(N)
    order[-1] = 10**6  # in the last batch: steps 0..3 never read it
    assert steps.run(order, 0, 4) == 4
    with pytest.raises(IndexError):
        steps.run(order, 4, 1)
    assert steps.run(np.random.default_rng(0).permutation(N), 0, 5) == 5
