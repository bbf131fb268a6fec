"""The NumPy engine's step runner: the reference every other engine is tested against.

A step gathers its batch into a preallocated buffer, calls ``model.loss_and_gradients`` and
then the optimizer's update; it allocates no arrays. For SGD on a large flat parameter
vector the update is :func:`mlpkit.optim.sgd.sgd_momentum_update` applied block by block
(a block's four operations run while it is in cache) with the blocks shared between worker
threads: the same arithmetic, element for element, as ``SGD.step``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from mlpkit.core.arrays import flat_span
from mlpkit.core.errors import ConfigError
from mlpkit.engine.threads import WorkerPool
from mlpkit.nn.dropout import Dropout
from mlpkit.nn.losses import check_label_smoothing
from mlpkit.nn.max_norm import apply_max_norm
from mlpkit.nn.mlp import MLP
from mlpkit.optim.clipping import clip_grad_norm
from mlpkit.optim.sgd import SGD, sgd_momentum_update

if TYPE_CHECKING:
    from mlpkit.optim.schedules import Schedule

#: Flat parameter vectors longer than ``BLOCKED_MIN`` are updated in blocks of ``BLOCK``
#: elements, shared between the worker threads.
BLOCK = 65_536
BLOCKED_MIN = 4 * BLOCK

_Part = list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]


class BlockedSGDUpdate:
    """``SGD.step`` on one flat (params, grads, velocity) triple, block by block, on ``pool``.

    Each thread's list of blocks has its own block-sized scratch array (which stays in cache
    instead of streaming a full-size copy). The learning rate and momentum are read from the
    optimizer at every call.
    """

    def __init__(self, optimizer: SGD, grads: np.ndarray, pool: WorkerPool) -> None:
        params, velocity = flat_span(optimizer.params), flat_span(optimizer.velocity)
        if params is None or velocity is None or grads.shape != params.shape or grads.dtype != params.dtype:
            raise ValueError("a blocked update needs flat parameters, velocity and gradients of one shape")
        if not optimizer.plain:
            raise ValueError("a blocked update runs the seed's SGD rule only (no Nesterov, no weight decay)")
        self.optimizer, self.pool = optimizer, pool
        n = len(params)
        blocks = [(params[i : i + BLOCK], grads[i : i + BLOCK], velocity[i : i + BLOCK]) for i in range(0, n, BLOCK)]
        per = -(-len(blocks) // pool.workers)
        self.parts: list[_Part] = []
        for i in range(0, len(blocks), per):
            scratch = np.empty(BLOCK, dtype=params.dtype)
            self.parts.append([(p, g, v, scratch[: len(p)]) for p, g, v in blocks[i : i + per]])

    def __call__(self, grads: Sequence[np.ndarray] = ()) -> None:
        self.pool.run_each(self._update, self.parts)

    def _update(self, part: _Part) -> None:
        lr, momentum = self.optimizer.lr, self.optimizer.momentum
        for p, g, v, s in part:
            sgd_momentum_update(p, g, v, s, lr=lr, momentum=momentum)


class NumpySteps:
    """Runs training steps with NumPy: ``run(order, first_step, n_steps) -> applied``, the
    same interface as :class:`mlpkit.engine.compiled.CompiledSteps`.

    Parameters
    ----------
    model : MLP
        The model to train, in place.
    optimizer : object
        Anything with ``step(grads)`` (grads in ``model.parameters()`` order); an :class:`SGD`
        on a large flat parameter vector is updated by a :class:`BlockedSGDUpdate` instead.
    batch_size : int
        Rows per step (the epoch's last step may have fewer).
    x, y : ndarray
        The prepared training inputs and integer (intp) labels.
    workers : int, default 1
        Threads that share a blocked update.
    dropout : Dropout, optional
        Dropout rates: each step draws its masks from ``rng`` (before its forward pass).
    rng : numpy.random.Generator, optional
        Required with dropout: the training loop's generator (its state is checkpointed, so a
        resumed run draws the same masks).
    label_smoothing : float, default 0.0
        The smoothing of the cross-entropy's target (see :func:`mlpkit.nn.losses.softmax_cross_entropy`).
    clip_norm : float, optional
        Clip the gradients to this global norm before each update (`mlpkit.optim.clipping`).
    schedule : Schedule, optional
        Stepped after every update (it sets ``optimizer.lr`` for the next one).
    max_norm : float, optional
        After every update, each hidden unit's incoming weights rescaled to norm <= this
        (`mlpkit.nn.max_norm.apply_max_norm`).

    Raises
    ------
    ConfigError
        Dropout without ``rng``, or a label smoothing outside [0, 1].
    """

    def __init__(
        self,
        model: MLP,
        optimizer: object,
        batch_size: int,
        x: np.ndarray,
        y: np.ndarray,
        *,
        workers: int = 1,
        dropout: Dropout | None = None,
        rng: np.random.Generator | None = None,
        label_smoothing: float = 0.0,
        clip_norm: float | None = None,
        schedule: Schedule | None = None,
        max_norm: float | None = None,
    ) -> None:
        self.model, self.optimizer, self.batch_size = model, optimizer, batch_size
        self.clip_norm, self.schedule, self.max_norm = clip_norm, schedule, max_norm
        self.x, self.y = x, y
        self.label_smoothing = check_label_smoothing(label_smoothing)
        self._masks = dropout.masks(model, batch_size) if dropout is not None and dropout.active else None
        if self._masks is not None and rng is None:
            raise ConfigError("dropout draws its masks from a generator: pass rng (the training loop's)")
        self.rng = rng
        # everything a step writes into, allocated once
        self._ws = model.workspace(batch_size, with_batch=True)
        self._grads = model.new_gradients()
        self.pool: WorkerPool | None = None
        self._update: Callable[[Sequence[np.ndarray]], None] = optimizer.step  # type: ignore[attr-defined]
        flat_grads = flat_span(self._grads)
        if (
            type(optimizer) is SGD
            and optimizer.plain  # the blocked update runs the seed's rule only
            and clip_norm is None  # it updates in blocks; clipping needs the whole gradient first
            and flat_grads is not None
            and len(flat_grads) > BLOCKED_MIN
            and flat_span(optimizer.params) is not None
        ):
            self.pool = WorkerPool(workers)
            self._update = BlockedSGDUpdate(optimizer, flat_grads, self.pool)
        self.losses = np.empty(0, dtype=np.float64)

    def run(self, order: np.ndarray, first_step: int, n_steps: int) -> int:
        """Steps ``first_step .. first_step + n_steps - 1`` of the epoch with sample ``order``.

        Returns how many were applied; their losses are ``self.losses[:applied]`` and, when a
        loss was not finite, ``self.losses[applied]`` is that loss (its update not applied).
        """
        if len(self.losses) < n_steps:
            self.losses = np.empty(n_steps, dtype=np.float64)
        losses, bs, ws, grads = self.losses, self.batch_size, self._ws, self._grads
        loss_and_gradients, update, take = self.model.loss_and_gradients, self._update, np.take
        x, y, full_x, full_y = self.x, self.y, ws.inputs, ws.labels
        assert full_x is not None and full_y is not None  # a workspace made with_batch
        masks, rng, smoothing = self._masks, self.rng, self.label_smoothing
        extras = self.clip_norm is not None or self.schedule is not None or self.max_norm is not None
        for s in range(n_steps):
            step = first_step + s
            idx = order[step * bs : (step + 1) * bs]
            m = len(idx)
            xb, yb = (full_x, full_y) if m == bs else (full_x[:m], full_y[:m])
            take(x, idx, axis=0, out=xb, mode="clip")  # "clip": written straight into xb
            take(y, idx, out=yb, mode="clip")
            if masks is not None:
                masks.draw(rng, m)  # type: ignore[arg-type]  # rng is checked in __init__
            loss = loss_and_gradients(xb, yb, ws, grads, dropout=masks, label_smoothing=smoothing)
            losses[s] = loss
            if not math.isfinite(loss):
                return s
            if extras:
                self._before_update(grads)
            update(grads)
            if extras:
                self._after_update()
        return n_steps

    def _before_update(self, grads: list[np.ndarray]) -> None:
        if self.clip_norm is not None:
            clip_grad_norm(grads, self.clip_norm)

    def _after_update(self) -> None:
        if self.schedule is not None:
            self.schedule.step()
        if self.max_norm is not None:
            apply_max_norm(self.model, self.max_norm)

    def use_inputs(self, x: np.ndarray, sparse: object = None) -> None:
        """Train on ``x`` from the next run on (the NumPy steps read no sparse form)."""
        self.x = x

    def close(self) -> None:
        """Stop the worker threads of a blocked update (the runner then updates on one thread)."""
        if self.pool is not None:
            self.pool.close()
            self._update = self.optimizer.step  # type: ignore[attr-defined]
