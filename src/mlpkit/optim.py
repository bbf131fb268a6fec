"""Optimizers that own their state; each update is plain arithmetic on (param, grad) pairs.

The optimizer knows nothing of the model: it gets lists of arrays and updates them in place.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .errors import CheckpointError, ConfigError


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


class SGD:
    """Mini-batch SGD with (heavy-ball) momentum, v = g + gamma v, w -= lr v.

    This equals PyTorch's ``torch.optim.SGD(momentum=gamma, dampening=0)``: the velocity
    starts at zero, so the first step is w -= lr * g.
    """

    def __init__(self, params: Sequence[np.ndarray], *, lr: float, momentum: float = 0.0) -> None:
        if not np.isfinite(lr) or lr <= 0:
            raise ConfigError(f"learning_rate must be > 0, got {lr}")
        if not (0.0 <= momentum < 1.0):
            raise ConfigError(f"momentum must lie in [0, 1), got {momentum}")
        self.params = list(params)
        self.lr = float(lr)
        self.momentum = float(momentum)
        self.velocity = [np.zeros_like(p) for p in self.params]
        self._scratch = [np.empty_like(p) for p in self.params]

    def step(self, grads: Sequence[np.ndarray]) -> None:
        for p, g, v, s in zip(self.params, grads, self.velocity, self._scratch):
            sgd_momentum_update(p, g, v, s, lr=self.lr, momentum=self.momentum)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {f"velocity.{i}": v.copy() for i, v in enumerate(self.velocity)}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        for i, v in enumerate(self.velocity):
            key = f"velocity.{i}"
            if key not in state or np.shape(state[key]) != v.shape:
                raise CheckpointError(f"optimizer state does not fit: {key} missing or of wrong shape")
            v[...] = state[key]
