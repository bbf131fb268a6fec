"""RMSprop (Tieleman & Hinton 2012): divide the gradient by a running root mean square of it.

PyTorch's ``torch.optim.RMSprop`` in place, with its options: L2 weight decay (coupled),
momentum on the scaled gradient, and the centered variant (divide by an estimate of the
gradient's standard deviation instead of its root mean square).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mlpkit.core.errors import ConfigError
from mlpkit.optim import hyperparameters as hp
from mlpkit.optim.optimizer import Optimizer, StateBuffer

__all__ = ["RMSprop", "rmsprop_update"]


def rmsprop_update(
    param: np.ndarray,
    grad: np.ndarray,
    square_avg: np.ndarray,
    grad_avg: np.ndarray | None,
    momentum_buffer: np.ndarray | None,
    scratch: np.ndarray,
    decayed: np.ndarray | None,
    *,
    lr: float,
    alpha: float,
    eps: float,
    momentum: float,
    weight_decay: float,
) -> None:
    """One RMSprop step, in place, in PyTorch's order of operations:

    g <- g + wd w                        (when weight_decay > 0; ``decayed`` is its scratch)
    s <- alpha s + (1 - alpha) g^2
    a <- a + (1 - alpha) (g - a)         (centered: ``grad_avg`` given)
    d <- sqrt(s - a^2) + eps  (centered), or sqrt(s) + eps
    b <- momentum b + g / d;  w <- w - lr b      (``momentum_buffer`` given)
    w <- w - lr g / d                    (otherwise)
    """
    g = grad
    if weight_decay:
        assert decayed is not None
        np.multiply(param, weight_decay, out=decayed)
        decayed += grad
        g = decayed
    square_avg *= alpha
    np.multiply(g, 1 - alpha, out=scratch)
    scratch *= g
    square_avg += scratch
    if grad_avg is not None:
        np.subtract(g, grad_avg, out=scratch)  # a.lerp_(g, 1 - alpha), as torch computes it for weights < 0.5
        scratch *= 1 - alpha
        grad_avg += scratch
        np.multiply(grad_avg, grad_avg, out=scratch)
        np.subtract(square_avg, scratch, out=scratch)
        np.sqrt(scratch, out=scratch)
    else:
        np.sqrt(square_avg, out=scratch)
    scratch += eps
    np.divide(g, scratch, out=scratch)
    if momentum_buffer is not None:
        momentum_buffer *= momentum
        momentum_buffer += scratch
        np.multiply(momentum_buffer, lr, out=scratch)
    else:
        scratch *= lr
    param -= scratch


class RMSprop(Optimizer):
    """RMSprop: w <- w - lr g / (sqrt(E[g^2]) + eps), with PyTorch's options.

    Equals ``torch.optim.RMSprop(lr, alpha, eps, weight_decay, momentum, centered)``: see
    :func:`rmsprop_update` for the rule. The state is the step count, the running square
    average, and the momentum buffer and gradient average when those options are on.

    Parameters
    ----------
    params : sequence of ndarray
        The arrays to update in place (``model.parameters()``).
    lr : float
        The learning rate, > 0.
    alpha : float, default 0.99
        Decay rate of the running averages, in [0, 1).
    eps : float, default 1e-8
        Added to the denominator, > 0.
    momentum : float, default 0.0
        Momentum on the scaled gradient, in [0, 1); 0 keeps no buffer.
    weight_decay : float, default 0.0
        L2 penalty, >= 0, added to the gradient.
    centered : bool, default False
        Normalize by the gradient's estimated variance instead of its second moment.

    Raises
    ------
    ConfigError
        A hyperparameter outside its range, naming it.
    """

    name = "rmsprop"
    counts_steps = True

    def __init__(
        self,
        params: Sequence[np.ndarray],
        *,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        centered: bool = False,
    ) -> None:
        super().__init__(params, lr=lr)
        self.alpha = hp.unit_interval(alpha, "alpha")
        self.eps = hp.positive(eps, "eps")
        self.momentum = hp.unit_interval(momentum, "momentum")
        self.weight_decay = hp.non_negative(weight_decay, "weight_decay")
        if not isinstance(centered, (bool, np.bool_)):
            raise ConfigError(f"centered must be true or false, got {centered!r}")
        self.centered = bool(centered)
        self._square_avg = self._state("square_avg")
        self._momentum_buffer = self._state("momentum_buffer") if self.momentum else None
        self._grad_avg = self._state("grad_avg") if self.centered else None
        self._scratch_buffer = self._scratch()
        self._decayed: StateBuffer | None = None  # g + wd w, made at the first step with weight decay

    def _update(self, i: int, param: np.ndarray, grad: np.ndarray) -> None:
        if self.weight_decay and self._decayed is None:
            self._decayed = self._scratch()
        rmsprop_update(
            param,
            grad,
            self._square_avg.part(i),
            None if self._grad_avg is None else self._grad_avg.part(i),
            None if self._momentum_buffer is None else self._momentum_buffer.part(i),
            self._scratch_buffer.part(i),
            None if self._decayed is None else self._decayed.part(i),
            lr=self.lr,
            alpha=self.alpha,
            eps=self.eps,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
        )
