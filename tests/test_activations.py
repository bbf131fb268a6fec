import numpy as np
import pytest

from mlpkit.nn.activations import ACTIVATIONS, get_activation
from mlpkit.core.errors import ConfigError

REFERENCE = {
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "improved_sigmoid": lambda z: 1.7159 * np.tanh(2 * z / 3),
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_forward_matches_formula(name):
    z = np.linspace(-30, 30, 601)
    np.testing.assert_allclose(get_activation(name).forward(z.copy()), REFERENCE[name](z), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_derivative_from_output_matches_finite_difference(name):
    z = np.linspace(-4, 4, 81)
    z = z[np.abs(z) > 1e-3]  # relu has a kink at 0
    act = get_activation(name)
    h = 1e-6
    numeric = (REFERENCE[name](z + h) - REFERENCE[name](z - h)) / (2 * h)
    np.testing.assert_allclose(act.derivative(act.forward(z.copy())), numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_in_place_and_dtype_preserved(name):
    z = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)
    expected = REFERENCE[name](z.astype(np.float64))
    out = get_activation(name).forward(z, out=z)
    assert out is z and z.dtype == np.float32
    np.testing.assert_allclose(z, expected, rtol=1e-6, atol=1e-6)


def test_sigmoid_does_not_overflow():
    with np.errstate(all="raise"):
        out = get_activation("sigmoid").forward(np.array([-1e4, 0.0, 1e4]))
    np.testing.assert_array_equal(out, [0.0, 0.5, 1.0])


def test_unknown_activation_lists_valid_names():
    with pytest.raises(ConfigError, match="valid: improved_sigmoid, relu, sigmoid, tanh"):
        get_activation("swish")
