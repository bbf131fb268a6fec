"""Gradient checks as tests: the seed's check (epsilon 1e-3, 100 MNIST images, weights
uniform(-1, 1), every analytic gradient within 1e-3) and a float64 relative-error check."""

import numpy as np
import pytest

from mlpkit.nn.activations import ACTIVATIONS
from mlpkit.nn.gradcheck import check_gradients
from mlpkit.nn.mlp import MLP

TOPOLOGIES = {"[64,10]": [64], "[64,64,10]": [64, 64], "ten hidden of 64": [64] * 10}


@pytest.fixture(scope="module")
def mnist_batch(mnist_path):
    from mlpkit.data import Normalizer, load_mnist, make_split

    split = make_split(load_mnist(mnist_path), "seed")
    norm = Normalizer.fit(split.x_train)
    return norm.apply(split.x_train[:100], dtype=np.float64), np.asarray(split.y_train[:100], dtype=np.intp)


SEED_CASES = [(t, a) for t in ("[64,10]", "[64,64,10]") for a in sorted(ACTIVATIONS)] + [
    ("ten hidden of 64", "sigmoid")
]


@pytest.mark.parametrize(("topology", "activation"), SEED_CASES)
def test_seed_gradient_check_on_mnist(mnist_batch, topology, activation):
    """The assignment's check: epsilon 1e-3, weights uniform(-1, 1), |error| <= 1e-3.

    ReLU (not in the assignment) uses epsilon 1e-4: with uniform(-1, 1) weights, pre-activations
    of the second layer are large and a 1e-3 nudge often crosses ReLU's kink, which is an
    error of the finite difference, not of backprop.
    """
    x_raw, y = mnist_batch
    model = MLP(TOPOLOGIES[topology], activation=activation, dtype="float64", bias="input_column")
    rng = np.random.default_rng(0)
    model.init_weights(rng, "uniform")
    x = model.prepare_inputs(x_raw)
    # Every entry of small parameters; a random subset of the 50,240 input weights
    # (`mlpkit gradcheck` checks all of them).
    epsilon = 1e-4 if activation == "relu" else 1e-3
    result = check_gradients(model, x, y, epsilon=epsilon, tolerance=1e-3, max_per_parameter=150, rng=rng)
    assert result.passed, result


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_ten_hidden_layers_relative_float64(mnist_batch, activation):
    """Ten hidden layers of 64 with each activation, float64 relative error.

    With uniform(-1, 1) weights ten tanh-like layers saturate and ten ReLU layers blow up, so
    epsilon 1e-3 measures the curvature of the loss, not backprop; fan-in init and a small
    epsilon make the finite difference itself accurate.
    """
    x_raw, y = mnist_batch
    model = MLP(TOPOLOGIES["ten hidden of 64"], activation=activation, dtype="float64", bias="input_column")
    rng = np.random.default_rng(1)
    model.init_weights(rng, "fan_in_normal")
    x = model.prepare_inputs(x_raw[:20])
    result = check_gradients(
        model, x, y[:20], epsilon=1e-6, tolerance=1e-4, mode="relative", max_per_parameter=40, rng=rng
    )
    assert result.passed, result


@pytest.mark.parametrize("bias", ["input_column", "per_layer"])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_relative_error_float64_every_parameter(activation, bias):
    rng = np.random.default_rng(3)
    model = MLP([6, 5], n_features=8, n_classes=4, activation=activation, bias=bias, dtype="float64")
    model.init_weights(rng, "fan_in_normal")
    x = model.prepare_inputs(rng.normal(size=(10, 8)))
    y = rng.integers(0, 4, 10)
    result = check_gradients(model, x, y, epsilon=1e-6, tolerance=1e-5, mode="relative")
    assert result.num_checked == model.num_parameters
    assert result.passed, result


def test_a_wrong_gradient_is_caught(monkeypatch):
    """The check must fail when backprop is wrong (here: a derivative off by a factor)."""
    from mlpkit.nn import activations

    rng = np.random.default_rng(0)
    broken = activations.Activation(
        "sigmoid", activations.sigmoid, lambda a, out=None: activations.sigmoid_derivative(a, out=out) * 1.5
    )
    model = MLP([5], n_features=6, n_classes=3, dtype="float64", bias="input_column")
    model.activation = broken
    model.init_weights(rng, "uniform")
    x = model.prepare_inputs(rng.normal(size=(8, 6)))
    result = check_gradients(model, x, rng.integers(0, 3, 8), mode="relative", tolerance=1e-5)
    assert not result.passed
    assert result.worst_parameter == "layers.0.weight"


def test_float32_model_is_refused():
    from mlpkit.core.errors import ConfigError

    model = MLP([4], n_features=3, n_classes=2, bias="input_column")
    with pytest.raises(ConfigError, match="float64"):
        check_gradients(model, np.ones((2, 4), np.float32), np.array([0, 1]))


def test_seed_gradient_check_every_parameter(mnist_batch):
    """The assignment's [64, 10] sigmoid network: all 50,880 gradients, epsilon 1e-3, within 1e-3."""
    x_raw, y = mnist_batch
    model = MLP([64], activation="sigmoid", dtype="float64", bias="input_column")
    model.init_weights(np.random.default_rng(0), "uniform")
    result = check_gradients(model, model.prepare_inputs(x_raw), y, epsilon=1e-3, tolerance=1e-3)
    assert result.num_checked == 50880
    assert result.passed, result


def _small_model(rng, activation="sigmoid"):
    model = MLP([7, 5], n_features=9, n_classes=4, activation=activation, dtype="float64", bias="input_column")
    model.init_weights(rng, "uniform")
    x = model.prepare_inputs(rng.normal(size=(30, 9)) * 2)
    return model, x, rng.integers(0, 4, 30)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_relative_mode_passes_correct_gradients_at_the_seeds_epsilon(activation):
    """epsilon 1e-3 (the CLI's default): entries whose own gradient is near zero used to fail
    (their central difference is off by epsilon^2 |d3L/dw3| / 6, not by a fraction of their gradient)."""
    model, x, y = _small_model(np.random.default_rng(5), activation)
    result = check_gradients(model, x, y, epsilon=1e-3, tolerance=1e-5, mode="relative")
    assert result.num_checked == model.num_parameters
    assert result.passed, result


@pytest.mark.parametrize("factor", [1.01, 1.5, -1.0])
def test_relative_mode_fails_a_wrong_gradient_by_orders_of_magnitude(factor):
    from mlpkit.nn import activations

    model, x, y = _small_model(np.random.default_rng(6))
    model.activation = activations.Activation(
        "sigmoid", activations.sigmoid, lambda a, out=None: activations.sigmoid_derivative(a, out=out) * factor
    )
    result = check_gradients(model, x, y, epsilon=1e-3, tolerance=1e-5, mode="relative")
    assert not result.passed and result.max_rel_error > 1e-3  # orders of magnitude above a correct one
    assert result.worst_parameter in ("layers.0.weight", "layers.1.weight")


def test_both_modes_report_the_same_largest_errors():
    model, x, y = _small_model(np.random.default_rng(7))
    a = check_gradients(model, x, y, epsilon=1e-3, mode="absolute")
    r = check_gradients(model, x, y, epsilon=1e-3, mode="relative", tolerance=1e-5)
    assert (a.max_abs_error, a.max_rel_error) == (r.max_abs_error, r.max_rel_error)
