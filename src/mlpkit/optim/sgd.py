"""Optimizers that own their state; each update is plain arithmetic on (param, grad) pairs.

The optimizer knows nothing of the model: it gets lists of arrays and updates them in place.
When the arrays are consecutive views of one buffer (as ``MLP.parameters()`` and
``MLP.new_gradients()`` are), an update runs once over the whole buffer instead of once per
array: the same arithmetic, element for element, in a few calls whatever the depth.
"""

from __future__ import annotations

import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np

from mlpkit.core.errors import CheckpointError, ConfigError
from mlpkit.core.arrays import aligned_zeros, flat_span


def _blas_threads() -> int:
    from threadpoolctl import threadpool_info

    return max([lib.get("num_threads") or 1 for lib in threadpool_info() if lib.get("user_api") == "blas"] or [1])


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


#: Flat parameter vectors longer than this are updated block by block, so that a block's
#: four operations run while it is in cache, and the blocks are shared between threads.
BLOCK = 65_536
BLOCKED_MIN = 4 * BLOCK


class _Blocks:
    """(param, grad, velocity) views of ``BLOCK`` elements, in one list per thread, each list with
    its own block-sized scratch array (which stays in cache instead of streaming a full copy)."""

    def __init__(self, arrays: Sequence[np.ndarray], workers: int) -> None:
        n = len(arrays[0])
        blocks = [tuple(a[i : i + BLOCK] for a in arrays) for i in range(0, n, BLOCK)]
        per = -(-len(blocks) // workers)
        self.parts = []
        for i in range(0, len(blocks), per):
            scratch = np.empty(BLOCK, dtype=arrays[0].dtype)
            self.parts.append([(p, g, v, scratch[: len(p)]) for p, g, v in blocks[i : i + per]])


class SGD:
    """Mini-batch SGD with (heavy-ball) momentum, v = g + gamma v, w -= lr v.

    This equals PyTorch's ``torch.optim.SGD(momentum=gamma, dampening=0)``: the velocity
    starts at zero, so the first step is w -= lr * g.

    ``threads``: for parameter vectors of more than ``BLOCKED_MIN`` elements (e.g. 784-1024-1024-10),
    how many threads share the update; default: the BLAS thread limit in force when the
    optimizer is made (``--threads``). The arithmetic is the same element by element.
    """

    def __init__(self, params: Sequence[np.ndarray], *, lr: float, momentum: float = 0.0,
                 threads: int | None = None) -> None:
        if not np.isfinite(lr) or lr <= 0:
            raise ConfigError(f"learning_rate must be > 0, got {lr}")
        if not (0.0 <= momentum < 1.0):
            raise ConfigError(f"momentum must lie in [0, 1), got {momentum}")
        self.params = list(params)
        self.lr = float(lr)
        self.momentum = float(momentum)
        self._flat_params = flat_span(self.params)
        self._pool: ThreadPoolExecutor | None = None
        self._workers = 1
        if self._flat_params is not None:  # velocity and scratch laid out like the parameters
            flat_v = aligned_zeros(len(self._flat_params), self._flat_params.dtype)
            flat_s = np.empty_like(self._flat_params)
            self.velocity = _split_like(flat_v, self.params)
            self._scratch = _split_like(flat_s, self.params)
            self._flat_state = (flat_v, flat_s)
            if len(self._flat_params) > BLOCKED_MIN:
                self._workers = max(1, threads if threads is not None else _blas_threads())
                if self._workers > 1:
                    self._pool = ThreadPoolExecutor(self._workers - 1)
                    weakref.finalize(self, self._pool.shutdown, wait=False)
        else:
            self.velocity = [np.zeros_like(p) for p in self.params]
            self._scratch = [np.empty_like(p) for p in self.params]
        self._grads_key: tuple[int, ...] = ()
        self._grads_seen: list[np.ndarray] = []  # keeps the ids in _grads_key alive
        self._flat_grads: np.ndarray | None = None
        self._blocks: _Blocks | None = None

    def step(self, grads: Sequence[np.ndarray]) -> None:
        """Apply v <- g + momentum v; w <- w - lr v to every parameter, in place."""
        if self._flat_params is not None:
            key = tuple(map(id, grads))
            if key != self._grads_key:
                self._find_flat_grads(key, grads)
            if self._blocks is not None:
                self._step_blocks(self._blocks)
                return
            if self._flat_grads is not None:
                flat_v, flat_s = self._flat_state
                sgd_momentum_update(self._flat_params, self._flat_grads, flat_v, flat_s,
                                    lr=self.lr, momentum=self.momentum)
                return
        for p, g, v, s in zip(self.params, grads, self.velocity, self._scratch):
            sgd_momentum_update(p, g, v, s, lr=self.lr, momentum=self.momentum)

    def _find_flat_grads(self, key: tuple[int, ...], grads: Sequence[np.ndarray]) -> None:
        self._grads_key, self._grads_seen = key, list(grads)
        flat = flat_span(self._grads_seen)
        if flat is not None and (flat.shape != self._flat_params.shape or flat.dtype != self._flat_params.dtype):
            flat = None
        self._flat_grads = flat
        self._blocks = None
        if flat is not None and len(flat) > BLOCKED_MIN:
            self._blocks = _Blocks([self._flat_params, flat, self._flat_state[0]], self._workers)

    def _step_blocks(self, blocks: _Blocks) -> None:
        helpers = [self._pool.submit(self._update_blocks, part) for part in blocks.parts[1:]] if self._pool else []
        self._update_blocks(blocks.parts[0])
        for h in helpers:
            h.result()

    def _update_blocks(self, part) -> None:
        lr, momentum = self.lr, self.momentum
        for p, g, v, s in part:
            sgd_momentum_update(p, g, v, s, lr=lr, momentum=momentum)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {f"velocity.{i}": v.copy() for i, v in enumerate(self.velocity)}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        for i, v in enumerate(self.velocity):
            key = f"velocity.{i}"
            if key not in state or np.shape(state[key]) != v.shape:
                raise CheckpointError(f"optimizer state does not fit: {key} missing or of wrong shape")
            v[...] = state[key]
