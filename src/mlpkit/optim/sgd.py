"""Optimizers that own their state; each update is plain arithmetic on (param, grad) pairs.

The optimizer knows nothing of the model: it gets lists of arrays and updates them in place.
When the arrays are consecutive views of one buffer (as ``MLP.parameters()`` and
``MLP.new_gradients()`` are), an update runs once over the whole buffer instead of once per
array: the same arithmetic, element for element, in a few calls whatever the depth.
``SGD.step`` is the reference; the engines (mlpkit.engine) may run the same arithmetic
differently (in blocks on several threads, or fused into compiled steps) and are tested
against it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mlpkit.core.arrays import aligned_zeros, flat_span
from mlpkit.core.errors import CheckpointError, ConfigError


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


def _split_like(flat: np.ndarray, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
    views, offset = [], 0
    for a in arrays:
        views.append(flat[offset : offset + a.size].reshape(a.shape))
        offset += a.size
    return views


class SGD:
    """Mini-batch SGD with (heavy-ball) momentum: v <- g + gamma v;  w <- w - lr v.

    This equals PyTorch's ``torch.optim.SGD(momentum=gamma, dampening=0)``: the velocity
    starts at zero, so the first step is w -= lr * g.

    Parameters
    ----------
    params : sequence of ndarray
        The arrays to update in place (``model.parameters()``). When they are consecutive
        views of one buffer, the velocity is laid out the same way (one flat buffer).
    lr : float
        The learning rate, > 0.
    momentum : float, default 0.0
        gamma, in [0, 1); 0 is plain SGD.

    Raises
    ------
    ConfigError
        A learning rate that is not a finite positive number, or a momentum outside [0, 1).
    """

    def __init__(self, params: Sequence[np.ndarray], *, lr: float, momentum: float = 0.0) -> None:
        if not np.isfinite(lr) or lr <= 0:
            raise ConfigError(f"learning_rate must be > 0, got {lr}")
        if not (0.0 <= momentum < 1.0):
            raise ConfigError(f"momentum must lie in [0, 1), got {momentum}")
        self.params = list(params)
        self.lr = float(lr)
        self.momentum = float(momentum)
        self._flat_params = flat_span(self.params)
        if self._flat_params is not None:  # velocity and scratch laid out like the parameters
            flat_v = aligned_zeros(len(self._flat_params), self._flat_params.dtype)
            flat_s = np.empty_like(self._flat_params)
            self.velocity = _split_like(flat_v, self.params)
            self._scratch = _split_like(flat_s, self.params)
            self._flat_state = (flat_v, flat_s)
        else:
            self.velocity = [np.zeros_like(p) for p in self.params]
            self._scratch = [np.empty_like(p) for p in self.params]
        self._grads_key: tuple[int, ...] = ()
        self._grads_seen: list[np.ndarray] = []  # keeps the ids in _grads_key alive
        self._flat_grads: np.ndarray | None = None

    def step(self, grads: Sequence[np.ndarray]) -> None:
        """Apply v <- g + momentum v; w <- w - lr v to every parameter, in place."""
        if self._flat_params is not None:
            key = tuple(map(id, grads))
            if key != self._grads_key:
                self._find_flat_grads(key, grads)
            if self._flat_grads is not None:
                flat_v, flat_s = self._flat_state
                sgd_momentum_update(
                    self._flat_params, self._flat_grads, flat_v, flat_s, lr=self.lr, momentum=self.momentum
                )
                return
        for p, g, v, s in zip(self.params, grads, self.velocity, self._scratch):
            sgd_momentum_update(p, g, v, s, lr=self.lr, momentum=self.momentum)

    def _find_flat_grads(self, key: tuple[int, ...], grads: Sequence[np.ndarray]) -> None:
        self._grads_key, self._grads_seen = key, list(grads)
        flat = flat_span(self._grads_seen)
        params = self._flat_params
        if flat is not None and params is not None and (flat.shape != params.shape or flat.dtype != params.dtype):
            flat = None
        self._flat_grads = flat

    def state_dict(self) -> dict[str, np.ndarray]:
        return {f"velocity.{i}": v.copy() for i, v in enumerate(self.velocity)}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        for i, v in enumerate(self.velocity):
            key = f"velocity.{i}"
            if key not in state or np.shape(state[key]) != v.shape:
                raise CheckpointError(f"optimizer state does not fit: {key} missing or of wrong shape")
            v[...] = state[key]
