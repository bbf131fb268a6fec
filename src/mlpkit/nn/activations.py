"""Hidden-layer activations, each with its derivative written from its own output.

Backpropagation needs f'(z) but only the layer's output a = f(z) is kept, so every
activation here provides ``derivative(a)``: fewer stored arrays and fewer passes.
All functions can work in place (``out=``) so the training loop allocates nothing, and
``backprop(delta, a, scratch)`` applies delta *= f'(z) in place, the form the backward pass uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mlpkit.core.errors import ConfigError

ArrayFn = Callable[..., np.ndarray]

#: LeCun's scaled tanh, f(x) = A tanh(B x) with A = 1.7159, B = 2/3 ("Efficient BackProp").
#: Defined here only: the compiled kernels take them from here too.
IMPROVED_SIGMOID_A = 1.7159
IMPROVED_SIGMOID_B = 2.0 / 3.0

#: Kernel codes: how the compiled engine (mlpkit.engine.kernels) names each built-in activation.
#: An activation whose ``kernel_code`` is None runs on the NumPy engine only.
KERNEL_SIGMOID, KERNEL_IMPROVED_SIGMOID, KERNEL_TANH, KERNEL_RELU = 0, 1, 2, 3


def sigmoid(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """1 / (1 + exp(-z)), computed as (1 + tanh(z/2)) / 2 so it never overflows."""
    out = np.multiply(z, 0.5, out=out)
    np.tanh(out, out=out)
    out += 1.0
    out *= 0.5
    return out


def sigmoid_derivative(a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """sigmoid'(z) = a (1 - a)."""
    out = np.subtract(1.0, a, out=out)
    out *= a
    return out


def sigmoid_backprop(delta: np.ndarray, a: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """delta *= a (1 - a), in place."""
    np.subtract(1.0, a, out=scratch)
    scratch *= a
    delta *= scratch
    return delta


def improved_sigmoid(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """1.7159 tanh(2z/3)."""
    out = np.multiply(z, IMPROVED_SIGMOID_B, out=out)
    np.tanh(out, out=out)
    out *= IMPROVED_SIGMOID_A
    return out


def improved_sigmoid_derivative(a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """f'(z) = (2/3)(1.7159 - a^2 / 1.7159) = (2/3)/1.7159 * (1.7159^2 - a^2)."""
    out = np.multiply(a, a, out=out)
    np.subtract(IMPROVED_SIGMOID_A**2, out, out=out)
    out *= IMPROVED_SIGMOID_B / IMPROVED_SIGMOID_A
    return out


def improved_sigmoid_backprop(delta: np.ndarray, a: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """delta *= (2/3)/1.7159 * (1.7159^2 - a^2), in place."""
    np.multiply(a, a, out=scratch)
    np.subtract(IMPROVED_SIGMOID_A**2, scratch, out=scratch)
    scratch *= IMPROVED_SIGMOID_B / IMPROVED_SIGMOID_A
    delta *= scratch
    return delta


def tanh(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Plain hyperbolic tangent."""
    return np.tanh(z, out=out)


def tanh_derivative(a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """tanh'(z) = 1 - a^2."""
    out = np.multiply(a, a, out=out)
    np.subtract(1.0, out, out=out)
    return out


def tanh_backprop(delta: np.ndarray, a: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """delta *= 1 - a^2, in place."""
    np.multiply(a, a, out=scratch)
    np.subtract(1.0, scratch, out=scratch)
    delta *= scratch
    return delta


def relu(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """max(z, 0)."""
    return np.maximum(z, 0.0, out=out)


def relu_derivative(a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """1 where a > 0, else 0: sign(a), since a = relu(z) >= 0 (subgradient 0 at 0, as PyTorch)."""
    return np.sign(a, out=out)


def relu_backprop(delta: np.ndarray, a: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """delta *= relu'(z), in place (0 where a == 0)."""
    np.sign(a, out=scratch)
    delta *= scratch
    return delta


@dataclass(frozen=True)
class Activation:
    """An activation by name: forward f(z), f'(z) from a = f(z), and delta *= f'(z) in place.

    Parameters
    ----------
    name : str
        The name configs use (``"improved_sigmoid"``).
    forward : callable
        ``forward(z, out=None)``: f(z), in place when ``out`` is ``z``.
    derivative : callable
        ``derivative(a, out=None)``: f'(z) written from the output a = f(z).
    backprop : callable, optional
        ``backprop(delta, a, scratch)``: delta *= f'(z) in place; built from ``derivative``
        when not given (the named activations give a fused version of the same formula).
    kernel_code : int, optional
        The compiled engine's code for this very formula (``KERNEL_*``); None (the default,
        and right for any new activation): the NumPy engine trains models that use it.
    """

    name: str
    forward: ArrayFn
    derivative: ArrayFn
    backprop: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None
    kernel_code: int | None = None

    def __post_init__(self) -> None:
        if self.backprop is None:
            derivative = self.derivative

            def backprop(delta: np.ndarray, a: np.ndarray, scratch: np.ndarray) -> np.ndarray:
                delta *= derivative(a, out=scratch)
                return delta

            object.__setattr__(self, "backprop", backprop)


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("sigmoid", sigmoid, sigmoid_derivative, sigmoid_backprop, KERNEL_SIGMOID),
        Activation(
            "improved_sigmoid",
            improved_sigmoid,
            improved_sigmoid_derivative,
            improved_sigmoid_backprop,
            KERNEL_IMPROVED_SIGMOID,
        ),
        Activation("tanh", tanh, tanh_derivative, tanh_backprop, KERNEL_TANH),
        Activation("relu", relu, relu_derivative, relu_backprop, KERNEL_RELU),
    )
}


def get_activation(name: str) -> Activation:
    """Look an activation up by name; an unknown name lists the valid ones."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        valid = ", ".join(sorted(ACTIVATIONS))
        raise ConfigError(f"unknown activation {name!r}; valid: {valid}") from None
