"""Preallocated buffers for the forward and backward passes, so that a training step allocates nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mlpkit.core.errors import InputError
from mlpkit.nn.losses import LossScratch


@dataclass
class BatchViews:
    """Views of a :class:`Workspace` for one row count (built once, then reused)."""

    outputs: list[np.ndarray]
    zs: list[np.ndarray]  # where each hidden layer's z is computed (see Workspace)
    deltas: list[np.ndarray]
    scratch: list[np.ndarray]
    logits_t: np.ndarray  # (K, n) C-ordered; outputs[-1] is its transpose


class Workspace:
    """Buffers for one maximum batch size; smaller batches use leading-row views.

    ``outputs`` holds a_1 .. a_L (last = logits, (capacity, K)); the logits live in a
    C-ordered (K, capacity) buffer and are handed out as its transpose, so that the
    row-wise softmax reductions over K classes are vectorized across rows.

    ``zs`` holds where each hidden layer's pre-activation z is computed: the output buffer
    itself (the activation applied in place, its derivative written from a) unless
    ``preactivations`` is set, for activations that need z after the forward
    (``Activation.from_input``): then buffers of their own.
    """

    def __init__(
        self,
        capacity: int,
        widths: Sequence[int],
        dtype: np.dtype,
        *,
        input_width: int | None = None,
        preactivations: bool = False,
    ) -> None:
        self.capacity = capacity
        n_classes = widths[-1]
        self._logits = np.empty(capacity * n_classes, dtype=dtype)
        self.outputs = [np.empty((capacity, w), dtype=dtype) for w in widths[:-1]]
        self.outputs.append(self._logits.reshape(n_classes, capacity).T)
        self.preactivations = preactivations
        self.zs = [np.empty((capacity, w), dtype=dtype) for w in widths[:-1]] if preactivations else self.outputs[:-1]
        self.deltas = [np.empty((capacity, w), dtype=dtype) for w in widths[:-1]]  # dL/dz, hidden layers
        self.scratch = [np.empty((capacity, w), dtype=dtype) for w in widths[:-1]]  # f'(a), hidden layers
        self.loss = LossScratch(capacity, n_classes, dtype)
        self.inputs = None if input_width is None else np.empty((capacity, input_width), dtype=dtype)
        self.labels = None if input_width is None else np.empty(capacity, dtype=np.intp)
        self._rows: dict[int, BatchViews] = {}

    def rows(self, n: int) -> BatchViews:
        """The buffers cut to the first ``n`` rows (cached per ``n``)."""
        rows = self._rows.get(n)
        if rows is None:
            if not 0 < n <= self.capacity:
                raise InputError(f"a batch of {n} rows does not fit this workspace (capacity {self.capacity})")
            n_classes = self.outputs[-1].shape[1]
            logits_t = self._logits[: n_classes * n].reshape(n_classes, n)
            outputs = [o[:n] for o in self.outputs[:-1]] + [logits_t.T]
            rows = BatchViews(
                outputs=outputs,
                zs=[z[:n] for z in self.zs] if self.preactivations else outputs[:-1],
                deltas=[d[:n] for d in self.deltas],
                scratch=[s[:n] for s in self.scratch],
                logits_t=logits_t,
            )
            self._rows[n] = rows
        return rows
