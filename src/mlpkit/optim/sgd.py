"""Stochastic gradient descent with heavy-ball or Nesterov momentum and L2 weight decay.

``SGD.step`` is the reference; the engines (mlpkit.engine) may run the plain rule
(:func:`sgd_momentum_update`: no Nesterov, no weight decay) differently (in blocks on several
threads, or fused into compiled steps) and are tested against it. Nesterov momentum and weight
decay run only here: the engines decline them (and fall back to this step).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mlpkit.core.errors import ConfigError
from mlpkit.optim import hyperparameters as hp
from mlpkit.optim.optimizer import Optimizer, StateBuffer

__all__ = ["SGD", "sgd_momentum_update", "sgd_update"]


def sgd_momentum_update(
    param: np.ndarray, grad: np.ndarray, velocity: np.ndarray, scratch: np.ndarray, *, lr: float, momentum: float
) -> None:
    """v <- g + momentum * v;  w <- w - lr * v   (in place; the seed report's convention).

    With momentum = 0 this is plain SGD, w <- w - lr * g.
    """
    if momentum:
        velocity *= momentum
        velocity += grad
        np.multiply(velocity, lr, out=scratch)
    else:
        np.multiply(grad, lr, out=scratch)
    param -= scratch


def sgd_update(
    param: np.ndarray,
    grad: np.ndarray,
    velocity: np.ndarray,
    scratch: np.ndarray,
    decayed: np.ndarray | None,
    *,
    lr: float,
    momentum: float,
    nesterov: bool,
    weight_decay: float,
) -> None:
    """PyTorch's SGD (dampening 0), in place; ``decayed`` is scratch for g + wd w (None if wd = 0).

    g <- g + wd * w                  (when weight_decay > 0: L2, coupled to the gradient)
    v <- momentum * v + g            (when momentum > 0)
    d <- g + momentum * v  (Nesterov), v (heavy ball), or g (no momentum)
    w <- w - lr * d
    """
    g = grad
    if weight_decay:
        assert decayed is not None
        np.multiply(param, weight_decay, out=decayed)
        decayed += grad
        g = decayed
    if momentum:
        velocity *= momentum
        velocity += g
        if nesterov:
            np.multiply(velocity, momentum, out=scratch)
            scratch += g
            scratch *= lr
        else:
            np.multiply(velocity, lr, out=scratch)
    else:
        np.multiply(g, lr, out=scratch)
    param -= scratch


class SGD(Optimizer):
    """Mini-batch SGD with momentum: v <- g + gamma v;  w <- w - lr v (or Nesterov's d = g + gamma v).

    This equals PyTorch's ``torch.optim.SGD(momentum=gamma, dampening=0, nesterov=...,
    weight_decay=...)``: the velocity starts at zero, so the first step is w -= lr * g.
    Without Nesterov and weight decay the update is :func:`sgd_momentum_update` (the seed's
    rule, which the engines also run); otherwise :func:`sgd_update`.

    Parameters
    ----------
    params : sequence of ndarray
        The arrays to update in place (``model.parameters()``). When they are consecutive
        views of one buffer, the velocity is laid out the same way (one flat buffer).
    lr : float
        The learning rate, > 0.
    momentum : float, default 0.0
        gamma, in [0, 1); 0 is plain SGD.
    nesterov : bool, default False
        Nesterov momentum: step along g + gamma v instead of v. Needs momentum > 0.
    weight_decay : float, default 0.0
        L2 penalty, >= 0: wd * w is added to the gradient (coupled, as PyTorch's SGD does).

    Raises
    ------
    ConfigError
        A learning rate that is not a finite positive number, a momentum outside [0, 1), a
        negative weight decay, or Nesterov without momentum.
    """

    name = "sgd"

    def __init__(
        self,
        params: Sequence[np.ndarray],
        *,
        lr: float,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr=lr)
        self.momentum = hp.unit_interval(momentum, "momentum")
        if not isinstance(nesterov, (bool, np.bool_)):
            raise ConfigError(f"nesterov must be true or false, got {nesterov!r}")
        if nesterov and not self.momentum:
            raise ConfigError("nesterov needs a momentum > 0")
        self.nesterov = bool(nesterov)
        self.weight_decay = hp.non_negative(weight_decay, "weight_decay")
        self._velocity = self._state("velocity")
        self.velocity = self._velocity.views
        self._scratch_buffer = self._scratch()
        self._decayed: StateBuffer | None = None  # g + wd w, made at the first step with weight decay

    @property
    def plain(self) -> bool:
        """True for the seed's rule (no Nesterov, no weight decay): the one the engines run."""
        return not self.nesterov and not self.weight_decay

    def _update(self, i: int, param: np.ndarray, grad: np.ndarray) -> None:
        v, s = self._velocity.part(i), self._scratch_buffer.part(i)
        if self.plain:
            sgd_momentum_update(param, grad, v, s, lr=self.lr, momentum=self.momentum)
            return
        if self.weight_decay and self._decayed is None:
            self._decayed = self._scratch()
        sgd_update(
            param,
            grad,
            v,
            s,
            None if self._decayed is None else self._decayed.part(i),
            lr=self.lr,
            momentum=self.momentum,
            nesterov=self.nesterov,
            weight_decay=self.weight_decay,
        )
