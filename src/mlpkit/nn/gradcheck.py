"""Finite-difference gradient checks: the proof that backpropagation is right.

Two modes:
- ``"absolute"`` (the seed's check): central differences with epsilon 1e-3 on every
  weight; each |analytic - numeric| must be <= tolerance (1e-3 in the assignment).
- ``"relative"``: |a - n| / max(|a| + |n|, floor) <= tolerance (e.g. 1e-6), where ``floor``
  is the largest analytic gradient of that parameter array (or ``scale_floor``, 1e-5, where
  that is smaller). Why a floor of that size: a central difference is off by about
  epsilon^2 |d^3L/dw^3| / 6 plus float64 rounding of the loss (~1e-16 * loss / epsilon),
  whatever the gradient's size, so an entry whose own gradient is near zero would get a
  large ratio from correct maths. Measured against its array's scale, a correct entry stays
  orders of magnitude below a wrong one (a wrong formula is off by a fraction of the
  gradients themselves). ``scale_floor`` covers arrays whose gradients all vanish (the early
  layers of deep nets), where the rounding dominates.

The largest absolute and the largest relative error are reported in both modes (each over
all entries); the location is that of the mode's largest error.

The model is evaluated in float64 either way so the check tests the maths, not rounding.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from mlpkit.core.errors import ConfigError
from mlpkit.nn.dropout import DropoutMasks
from mlpkit.nn.losses import softmax_cross_entropy
from mlpkit.nn.mlp import MLP
from mlpkit.nn.workspace import Workspace


@dataclass(frozen=True)
class GradCheckResult:
    max_abs_error: float
    max_rel_error: float
    worst_parameter: str
    worst_index: tuple[int, ...]
    num_checked: int
    passed: bool
    mode: str
    tolerance: float


def _loss(
    model: MLP, x: np.ndarray, y: np.ndarray, ws: Workspace, dropout: DropoutMasks | None, label_smoothing: float
) -> float:
    logits = model.forward(x, ws, dropout)
    loss, _ = softmax_cross_entropy(logits, y, out=logits, label_smoothing=label_smoothing)
    return loss


def _larger(current: float, new: float) -> float:
    """The larger of two errors, a NaN being larger than anything (and the first NaN kept)."""
    if math.isnan(current):
        return current
    return new if math.isnan(new) or new > current else current


def check_gradients(
    model: MLP,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epsilon: float = 1e-3,
    tolerance: float = 1e-3,
    mode: str = "absolute",
    max_per_parameter: int | None = None,
    rng: np.random.Generator | None = None,
    scale_floor: float = 1e-5,
    dropout: DropoutMasks | None = None,
    label_smoothing: float = 0.0,
) -> GradCheckResult:
    """Compare backprop gradients with central differences (L(w+e) - L(w-e)) / 2e.

    Parameters
    ----------
    model : MLP
        A float64 model; its weights are perturbed one at a time and put back.
    x : ndarray
        Prepared inputs (float64, with the bias column if the model uses one).
    y : ndarray
        Integer labels.
    epsilon : float, default 1e-3
        The finite-difference step (the seed's check).
    tolerance : float, default 1e-3
        The largest error that passes, in the units of ``mode``.
    mode : {"absolute", "relative"}, default "absolute"
        ``|a - n|``, or ``|a - n| / max(|a| + |n|, floor)`` (see the module docstring).
    max_per_parameter : int, optional
        Check this many random entries of each parameter array (default: every entry).
    rng : numpy.random.Generator, optional
        Draws those entries (default: seed 0).
    scale_floor : float, default 1e-5
        The relative mode's smallest floor: above the float64 rounding of a central
        difference (~1e-16 * loss / epsilon), for arrays whose gradients vanish (deep nets).
    dropout : DropoutMasks, optional
        Fixed masks (drawn or set for ``len(x)`` rows), used by every evaluation of the loss:
        checks the gradient of the loss with those units dropped.
    label_smoothing : float, default 0.0
        Checks the smoothed cross-entropy (see :func:`mlpkit.nn.losses.softmax_cross_entropy`).

    Returns
    -------
    GradCheckResult
        The worst errors, where they are, how many entries were checked, and ``passed``.

    Raises
    ------
    ConfigError
        An unknown mode, or a model that is not float64.
    """
    if mode not in ("absolute", "relative"):
        raise ConfigError(f"gradcheck mode must be 'absolute' or 'relative', got {mode!r}")
    if model.dtype != np.float64:
        raise ConfigError("gradient checks need a float64 model (MLP(..., dtype='float64'))")
    ws = model.workspace(len(x))
    grads = model.new_gradients()
    model.loss_and_gradients(x, y, ws, grads, dropout=dropout, label_smoothing=label_smoothing)
    max_abs = max_rel = worst_error = -1.0
    where: tuple[str, tuple[int, ...]] = ("", ())
    count = 0
    for name, param, grad in zip(model.parameter_names(), model.parameters(), grads):
        floor = max(scale_floor, float(np.abs(grad).max(initial=0.0)))
        indices: Iterable[tuple[int, ...]] = np.ndindex(param.shape)
        if max_per_parameter is not None and param.size > max_per_parameter:
            rng = rng or np.random.default_rng(0)
            flat = rng.choice(param.size, size=max_per_parameter, replace=False)
            indices = (np.unravel_index(i, param.shape) for i in flat)
        for idx in indices:
            original = param[idx]
            param[idx] = original + epsilon
            plus = _loss(model, x, y, ws, dropout, label_smoothing)
            param[idx] = original - epsilon
            minus = _loss(model, x, y, ws, dropout, label_smoothing)
            param[idx] = original
            numeric = (plus - minus) / (2 * epsilon)
            analytic = float(grad[idx])
            abs_err = abs(analytic - numeric)
            rel_err = abs_err / max(abs(analytic) + abs(numeric), floor)
            max_abs, max_rel = _larger(max_abs, abs_err), _larger(max_rel, rel_err)
            error = abs_err if mode == "absolute" else rel_err
            if _larger(worst_error, error) is not worst_error:
                worst_error, where = error, (name, tuple(int(i) for i in idx))
            count += 1
    return GradCheckResult(
        max_abs_error=max(max_abs, 0.0),
        max_rel_error=max(max_rel, 0.0),
        worst_parameter=where[0],
        worst_index=where[1],
        num_checked=count,
        passed=bool(0 <= worst_error <= tolerance),
        mode=mode,
        tolerance=tolerance,
    )
