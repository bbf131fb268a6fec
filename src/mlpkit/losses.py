"""Softmax fused with cross-entropy, on logits.

Working on logits with a max-subtracted log-sum-exp keeps the loss finite for any logits,
and the fused gradient is simply (softmax - onehot) / batch.
"""

from __future__ import annotations

import numpy as np


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


def softmax_cross_entropy(
    logits: np.ndarray, labels: np.ndarray, *, out: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """Loss and d(loss)/d(logits) in one pass.

    logits: (N, K); labels: (N,) integers in [0, K). Returns the mean loss and
    (softmax(logits) - onehot(labels)) / N, written into ``out`` (may be ``logits``).
    """
    n = logits.shape[0]
    rows = np.arange(n)
    grad = np.subtract(logits, logits.max(axis=1, keepdims=True), out=out)
    picked = grad[rows, labels]  # shifted logit of the true class (a copy)
    np.exp(grad, out=grad)
    sums = grad.sum(axis=1, keepdims=True)
    loss = float(np.mean(np.log(sums[:, 0]) - picked))
    grad /= sums
    grad[rows, labels] -= 1.0
    grad /= n
    return loss, grad
