"""Hidden-layer activations, each with its derivative and an in-place backprop.

Backpropagation needs f'(z). The seed's activations write it from their own output
a = f(z) (``derivative(a)``), so only a is kept: fewer stored arrays and fewer passes.
The modern ones (leaky ReLU, ELU, GELU, SiLU) are marked ``from_input``: the model keeps
their pre-activation z in a buffer of its own (allocated only for them), computes
f(z) out of place, and their ``derivative``/``backprop`` take z (GELU's and SiLU's
derivatives cannot be written from a; leaky ReLU's and ELU's forward could not run in
place without a temporary).
All functions can work in place (``out=``) so the training loop allocates nothing, and
``backprop(delta, a_or_z, scratch)`` applies delta *= f'(z) in place, the form the backward
pass uses.
"""

from __future__ import annotations

import importlib
import math
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

#: Leaky ReLU's negative slope and ELU's alpha: PyTorch's defaults.
LEAKY_RELU_SLOPE = 0.01
ELU_ALPHA = 1.0
_SQRT1_2 = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


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


# ------------------------------------------------------------------ from the input z
# Each forward writes f(z) into a distinct ``out`` without temporaries (the model's path);
# with ``out`` None or overlapping z it computes into a fresh array first.


def _erf() -> np.ufunc:
    """scipy.special.erf (scipy comes with scikit-learn), imported on first use so that importing
    mlpkit stays cheap; a ufunc, so it works in place (``out=``) in float32 and float64."""
    return importlib.import_module("scipy.special").erf


def _fresh(z: np.ndarray, out: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Where to compute f(z): ``out`` when it is distinct from z, else a new array (then copied to ``out``)."""
    if out is not None and not np.may_share_memory(out, z):
        return out, None
    return np.empty_like(z), out


def _finish(result: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    if out is None:
        return result
    out[...] = result
    return out


def leaky_relu(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """max(z, 0.01 z): z where z > 0, else 0.01 z (``torch.nn.LeakyReLU()``)."""
    work, out = _fresh(z, out)
    np.multiply(z, LEAKY_RELU_SLOPE, out=work)
    np.maximum(work, z, out=work)
    return _finish(work, out)


def leaky_relu_derivative(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """1 where z > 0, else 0.01 (at 0 too, as PyTorch)."""
    out = np.greater(z, 0.0, out=out if out is not None else np.empty_like(z))
    out *= 1.0 - LEAKY_RELU_SLOPE
    out += LEAKY_RELU_SLOPE
    return out


def elu(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """z where z > 0, else exp(z) - 1 (alpha 1, ``torch.nn.ELU()``).

    Written max(expm1(min(z, 0)), z): where z <= 0, expm1(z) >= z, where z > 0 the first term is 0.
    """
    work, out = _fresh(z, out)
    np.minimum(z, 0.0, out=work)
    np.expm1(work, out=work)
    np.maximum(work, z, out=work)
    return _finish(work, out)


def elu_derivative(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """exp(min(z, 0)): 1 where z > 0, exp(z) = elu(z) + 1 elsewhere (1 at 0, as PyTorch)."""
    out = np.minimum(z, 0.0, out=out)
    return np.exp(out, out=out)


def gelu(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Exact GELU, z Phi(z) = z (1 + erf(z / sqrt 2)) / 2 (``torch.nn.GELU()``, approximate="none")."""
    erf = _erf()
    work, out = _fresh(z, out)
    np.multiply(z, _SQRT1_2, out=work)
    erf(work, out=work)
    work += 1.0
    work *= z
    work *= 0.5
    return _finish(work, out)


def gelu_derivative(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """GELU'(z) = Phi(z) + z phi(z), phi(z) = exp(-z^2 / 2) / sqrt(2 pi)."""
    return gelu_backprop(np.ones_like(z) if out is None else _ones(out), z.copy(), np.empty_like(z))


def _ones(out: np.ndarray) -> np.ndarray:
    out[...] = 1.0
    return out


def gelu_backprop(delta: np.ndarray, z: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """delta *= Phi(z) + z phi(z), in place; overwrites z (the model does not read it again)."""
    erf = _erf()
    np.multiply(z, z, out=scratch)
    scratch *= -0.5
    np.exp(scratch, out=scratch)
    scratch *= _INV_SQRT_2PI
    scratch *= z  # z phi(z)
    z *= _SQRT1_2
    erf(z, out=z)
    z += 1.0
    z *= 0.5  # Phi(z)
    scratch += z
    delta *= scratch
    return delta


def silu(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """z sigmoid(z) (``torch.nn.SiLU()``, also called swish); the sigmoid never overflows."""
    work, out = _fresh(z, out)
    sigmoid(z, out=work)
    work *= z
    return _finish(work, out)


def silu_derivative(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """SiLU'(z) = s (1 + z (1 - s)), s = sigmoid(z)."""
    return silu_backprop(np.ones_like(z) if out is None else _ones(out), z, np.empty_like(z))


def silu_backprop(delta: np.ndarray, z: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """delta *= s (1 + z (1 - s)), in place (PyTorch's formula, term for term); z is kept."""
    sigmoid(z, out=scratch)
    delta *= scratch
    np.subtract(1.0, scratch, out=scratch)
    scratch *= z
    scratch += 1.0
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
    from_input : bool, default False
        ``derivative`` and ``backprop`` take the pre-activation z instead of a = f(z), and
        the model calls ``forward(z, out=a)`` with z in a buffer of its own, which
        ``backprop`` may overwrite (it is not read again).
    """

    name: str
    forward: ArrayFn
    derivative: ArrayFn
    backprop: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None
    kernel_code: int | None = None
    from_input: bool = False

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
        Activation("leaky_relu", leaky_relu, leaky_relu_derivative, from_input=True),
        Activation("elu", elu, elu_derivative, from_input=True),
        Activation("gelu", gelu, gelu_derivative, gelu_backprop, from_input=True),
        Activation("silu", silu, silu_derivative, silu_backprop, from_input=True),
    )
}


def get_activation(name: str) -> Activation:
    """Look an activation up by name; an unknown name lists the valid ones."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        valid = ", ".join(sorted(ACTIVATIONS))
        raise ConfigError(f"unknown activation {name!r}; valid: {valid}") from None
