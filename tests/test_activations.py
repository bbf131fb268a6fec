import math

import numpy as np
import pytest

from mlpkit.core.errors import ConfigError
from mlpkit.nn.activations import ACTIVATIONS, get_activation

REFERENCE = {
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "improved_sigmoid": lambda z: 1.7159 * np.tanh(2 * z / 3),
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0))),
    "gelu": lambda z: z * np.vectorize(lambda v: 0.5 * math.erfc(-v / math.sqrt(2)))(z),
    "silu": lambda z: z / (1 + np.exp(-z)),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_forward_matches_formula(name):
    z = np.linspace(-30, 30, 601)
    np.testing.assert_allclose(get_activation(name).forward(z.copy()), REFERENCE[name](z), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_derivative_from_output_matches_finite_difference(name):
    """From a = f(z), or from z itself for the activations marked ``from_input``."""
    z = np.linspace(-4, 4, 81)
    z = z[np.abs(z) > 1e-3]  # relu has a kink at 0
    act = get_activation(name)
    h = 1e-6
    numeric = (REFERENCE[name](z + h) - REFERENCE[name](z - h)) / (2 * h)
    given = z.copy() if act.from_input else act.forward(z.copy())
    np.testing.assert_allclose(act.derivative(given), numeric, rtol=1e-6, atol=1e-8)


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
    with pytest.raises(ConfigError, match="valid: elu, gelu, improved_sigmoid, leaky_relu, relu, sigmoid, silu, tanh"):
        get_activation("swish")


def test_each_builtin_names_its_own_kernel_code_and_new_ones_have_none():
    from mlpkit.nn import activations

    codes = {name: act.kernel_code for name, act in ACTIVATIONS.items() if act.kernel_code is not None}
    assert codes == {
        "sigmoid": activations.KERNEL_SIGMOID,
        "improved_sigmoid": activations.KERNEL_IMPROVED_SIGMOID,
        "tanh": activations.KERNEL_TANH,
        "relu": activations.KERNEL_RELU,
    }
    assert len(set(codes.values())) == len(codes)  # one kernel per formula
    assert {n for n, a in ACTIVATIONS.items() if a.kernel_code is None} == {"leaky_relu", "elu", "gelu", "silu"}
    custom = activations.Activation("mine", activations.tanh, activations.tanh_derivative)
    assert custom.kernel_code is None  # the compiled engine refuses it (tests/test_kernels.py)


def test_the_improved_sigmoid_constants_are_the_kernels():
    from mlpkit.engine import dense_kernels as dk
    from mlpkit.nn.activations import IMPROVED_SIGMOID_A as A
    from mlpkit.nn.activations import IMPROVED_SIGMOID_B as B

    consts = dk.constants(np.dtype(np.float64), lr=0.25, momentum=0.5)
    assert (consts[dk.ISIG_A], consts[dk.ISIG_B]) == (A, B) and A == 1.7159 and B == 2 / 3
    assert consts[dk.ISIG_A_SQUARED] == A * A and consts[dk.ISIG_B_OVER_A] == B / A
    assert (consts[dk.HALF], consts[dk.ONE], consts[dk.ZERO]) == (0.5, 1.0, 0.0)
    assert (consts[dk.LR], consts[dk.MOMENTUM]) == (0.25, 0.5)
