"""Gradient clipping by global norm: one scale for all gradients, so their direction is kept.

Why global and not per array: clipping each array alone changes the direction of the step;
scaling all of them by one factor only shortens it (Pascanu et al. 2013).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from mlpkit.core.arrays import flat_span
from mlpkit.optim import hyperparameters as hp

__all__ = ["clip_grad_norm", "global_norm"]

#: Added to the norm before dividing, as ``torch.nn.utils.clip_grad_norm_`` does.
NORM_EPS = 1e-6


def global_norm(grads: Sequence[np.ndarray]) -> float:
    """The 2-norm of all gradients together, sqrt(sum of every squared entry), in float64."""
    flat = flat_span(grads)
    arrays = [flat] if flat is not None else list(grads)
    total = 0.0
    for a in arrays:
        v = a.reshape(-1)
        total += float(np.dot(v, v))
    return math.sqrt(total)


def clip_grad_norm(grads: Sequence[np.ndarray], max_norm: float) -> float:
    """Scale ``grads`` in place so that their global norm is at most about ``max_norm``.

    PyTorch's ``clip_grad_norm_`` formula: with n the global norm, c = max_norm / (n + 1e-6);
    when c < 1 every gradient is multiplied by c (so a norm above max_norm ends just below
    it). A non-finite norm leaves the gradients as they are (the trainer's divergence check
    sees the loss).

    Parameters
    ----------
    grads : sequence of ndarray
        The gradients, changed in place.
    max_norm : float
        The largest global norm let through, > 0.

    Returns
    -------
    float
        The global norm before clipping.

    Raises
    ------
    ConfigError
        ``max_norm`` is not a finite number > 0.
    """
    max_norm = hp.positive(max_norm, "max_norm")
    norm = global_norm(grads)
    coef = max_norm / (norm + NORM_EPS)
    if math.isfinite(norm) and coef < 1.0:
        flat = flat_span(grads)
        for a in [flat] if flat is not None else grads:
            a *= coef
    return norm
