"""Softmax fused with cross-entropy, on logits.

Working on logits with a max-subtracted log-sum-exp keeps the loss finite for any logits,
and the fused gradient is simply (softmax - onehot) / batch.

The training loop and ``MLP.evaluate`` pass a :class:`LossScratch` so that a call allocates
no arrays; without one the same code runs on freshly allocated buffers. Logits may be
C-ordered (N, K) or the transpose of a C-ordered (K, N) array (what the model produces:
row-wise reductions over K = 10 classes are then vectorized across the N rows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mlpkit.core.errors import ConfigError


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log softmax(z) = z - max(z) - log(sum(exp(z - max(z)))), row-wise."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax(logits: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Row-wise softmax; ``out`` may be ``logits`` itself (in place)."""
    out = np.subtract(logits, logits.max(axis=1, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=1, keepdims=True)
    return out


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean cross-entropy -1/N sum_n log softmax(z_n)[y_n] for integer labels."""
    logp = log_softmax(logits)
    return float(-logp[np.arange(len(labels)), labels].mean())


@dataclass
class LossViews:
    """Views of a :class:`LossScratch` for one row count and one memory order.

    The loss works on the C-ordered 2-D array behind the logits: (N, K) with the classes
    on axis 1, or (K, N) (transposed logits) with the classes on axis 0.
    """

    axis: int  # the class axis of the C-ordered array
    rowmax: np.ndarray  # per-row maximum, shaped for broadcasting: (N, 1) or (1, N)
    sums: np.ndarray  # per-row sum of exp, same shape
    classes: np.ndarray  # 0..K-1 along the class axis: (1, K) or (K, 1)
    onehot: np.ndarray  # bool, like the array: True at each row's label
    ties: np.ndarray  # bool, like the array


class LossScratch:
    """Buffers for the fused loss on up to ``capacity`` rows of ``n_classes`` logits."""

    def __init__(self, capacity: int, n_classes: int, dtype: np.dtype | type = np.float32) -> None:
        self.capacity = int(capacity)
        self.n_classes = int(n_classes)
        self.dtype = np.dtype(dtype)
        self._rowmax = np.empty(self.capacity, self.dtype)
        self._sums = np.empty(self.capacity, self.dtype)
        self._onehot = np.empty(self.capacity * self.n_classes, bool)
        self._ties = np.empty(self.capacity * self.n_classes, bool)
        self._rows: dict[tuple[int, bool], LossViews] = {}

    @classmethod
    def for_logits(cls, logits: np.ndarray) -> LossScratch:
        return cls(logits.shape[0], logits.shape[1], logits.dtype)

    def rows(self, n: int, transposed: bool) -> LossViews:
        """Cached views for ``n`` rows; ``transposed``: the logits are a (K, n) array's ``.T``."""
        rows = self._rows.get((n, transposed))
        if rows is None:
            if n > self.capacity:
                raise ValueError(f"{n} rows exceed the loss scratch capacity {self.capacity}")
            k = self.n_classes
            shape, per_row, classes = ((k, n), (1, n), (k, 1)) if transposed else ((n, k), (n, 1), (1, k))
            rows = LossViews(
                axis=0 if transposed else 1,
                rowmax=self._rowmax[:n].reshape(per_row),
                sums=self._sums[:n].reshape(per_row),
                classes=np.arange(k).reshape(classes),
                onehot=self._onehot[: n * k].reshape(shape),
                ties=self._ties[: n * k].reshape(shape),
            )
            self._rows[(n, transposed)] = rows
        return rows


_max, _sum = np.maximum.reduce, np.add.reduce  # the ufunc methods, without np.max's wrapper


def _layout(a: np.ndarray) -> bool | None:
    """False for C order, True for the transpose of a C-ordered array, None for neither."""
    if a.flags.c_contiguous:
        return False
    if a.flags.f_contiguous:
        return True
    return None


def check_label_smoothing(value: float) -> float:
    """``value`` as a float if it is a number in [0, 1] (PyTorch's range), else a ConfigError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"label_smoothing must be a number in [0, 1], got {value!r}")
    return float(value)


def softmax_cross_entropy(
    logits: np.ndarray,
    labels: np.ndarray,
    *,
    out: np.ndarray | None = None,
    scratch: LossScratch | None = None,
    label_smoothing: float = 0.0,
) -> tuple[float, np.ndarray]:
    """Loss and d(loss)/d(logits) in one pass.

    logits: (N, K); labels: (N,) integers in [0, K). Returns the mean loss and
    (softmax(logits) - q) / N, written into ``out`` (may be ``logits``), where the target
    q is onehot(labels), or with ``label_smoothing`` e > 0 PyTorch's smoothed target
    (1 - e) onehot + e / K, so that the loss is
    mean(logsumexp(z) - (1 - e) z_y - (e / K) sum_k z_k) (``F.cross_entropy(label_smoothing=e)``).
    With ``scratch`` (capacity >= N) nothing is allocated; e = 0 runs today's operations exactly.
    """
    n = logits.shape[0]
    grad = out if out is not None else np.empty_like(logits)
    transposed = _layout(grad)
    if transposed is None:  # a strided ``out``: work on a contiguous copy, then write back
        loss, work = softmax_cross_entropy(logits, labels, label_smoothing=label_smoothing)
        grad[...] = work
        return loss, grad
    if label_smoothing:
        return _smoothed(logits, labels, grad, transposed, scratch, check_label_smoothing(label_smoothing))
    rows = (scratch or LossScratch.for_logits(logits)).rows(n, transposed)
    # z: the logits as the C-ordered array, g: the same for grad; per-row values broadcast
    z, g, lab = (logits.T, grad.T, labels) if transposed else (logits, grad, labels[:, None])
    axis, rowmax, sums, onehot = rows.axis, rows.rowmax, rows.sums, rows.onehot
    _max(z, axis=axis, keepdims=True, out=rowmax)
    np.subtract(z, rowmax, out=g)
    np.equal(rows.classes, lab, out=onehot)
    picked = float(_sum(g, axis=None, dtype=np.float64, where=onehot))  # sum of the labels' shifted logits
    np.exp(g, out=g)
    _sum(g, axis=axis, keepdims=True, out=sums)
    np.log(sums, out=rowmax)
    loss = (float(_sum(rowmax, axis=None, dtype=np.float64)) - picked) / n  # mean(log sum exp - shifted logit)
    sums *= n  # grad = exp / (N sum exp) - onehot / N
    np.divide(g, sums, out=g)
    np.subtract(g, 1.0 / n, out=g, where=onehot)
    return loss, grad


def _smoothed(
    logits: np.ndarray,
    labels: np.ndarray,
    grad: np.ndarray,
    transposed: bool,
    scratch: LossScratch | None,
    e: float,
) -> tuple[float, np.ndarray]:
    """:func:`softmax_cross_entropy` with label smoothing ``e`` > 0 (same passes, on shifted logits)."""
    n, k = logits.shape
    rows = (scratch or LossScratch.for_logits(logits)).rows(n, transposed)
    z, g, lab = (logits.T, grad.T, labels) if transposed else (logits, grad, labels[:, None])
    axis, rowmax, sums, onehot = rows.axis, rows.rowmax, rows.sums, rows.onehot
    _max(z, axis=axis, keepdims=True, out=rowmax)
    np.subtract(z, rowmax, out=g)
    np.equal(rows.classes, lab, out=onehot)
    picked = float(_sum(g, axis=None, dtype=np.float64, where=onehot))
    total = float(_sum(g, axis=None, dtype=np.float64))  # every shifted logit: the uniform part of q
    np.exp(g, out=g)
    _sum(g, axis=axis, keepdims=True, out=sums)
    np.log(sums, out=rowmax)
    lse = float(_sum(rowmax, axis=None, dtype=np.float64))
    loss = (lse - (1.0 - e) * picked - (e / k) * total) / n
    sums *= n  # grad = exp / (N sum exp) - e / (K N) - (1 - e) onehot / N
    np.divide(g, sums, out=g)
    g -= e / (k * n)
    np.subtract(g, (1.0 - e) / n, out=g, where=onehot)
    return loss, grad


def cross_entropy_sum_and_hits(
    logits: np.ndarray, labels: np.ndarray, *, scratch: LossScratch | None = None
) -> tuple[float, int]:
    """Summed cross-entropy and the number of rows whose argmax is the label.

    Overwrites ``logits``. An argmax tie is counted as ``np.argmax`` counts it (first index).
    """
    n = logits.shape[0]
    transposed = _layout(logits)
    if transposed is None:
        logits = np.ascontiguousarray(logits)
        transposed = False
    rows = (scratch or LossScratch.for_logits(logits)).rows(n, transposed)
    z, lab = (logits.T, labels) if transposed else (logits, labels[:, None])
    axis, rowmax, sums, onehot, ties = rows.axis, rows.rowmax, rows.sums, rows.onehot, rows.ties
    _max(z, axis=axis, keepdims=True, out=rowmax)
    np.equal(rows.classes, lab, out=onehot)
    # Correct where the label's logit is the row's maximum, when every row has a unique,
    # finite maximum; otherwise (ties, NaN, inf) count exactly as np.argmax does (first index).
    np.equal(z, rowmax, out=ties)
    if np.count_nonzero(ties) == n and math.isfinite(_sum(rowmax, axis=None)):
        hits = np.count_nonzero(np.logical_and(ties, onehot, out=ties))
    else:
        hits = np.count_nonzero(np.argmax(logits, axis=1) == labels)
    np.subtract(z, rowmax, out=z)
    picked = float(_sum(z, axis=None, dtype=np.float64, where=onehot))
    np.exp(z, out=z)
    _sum(z, axis=axis, keepdims=True, out=sums)
    np.log(sums, out=sums)
    return float(_sum(sums, axis=None, dtype=np.float64)) - picked, int(hits)
