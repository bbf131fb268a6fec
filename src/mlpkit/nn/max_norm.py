"""The max-norm constraint (Srivastava et al. 2014, section 5.1): after each update, every
hidden unit's incoming weight vector w is projected onto the ball ||w||_2 <= c.

A unit's incoming weights are its column of W_i (shape (fan_in, fan_out)). With
``bias="input_column"`` the last row of W_0 is the bias of the first layer, not a weight:
it is left out of the norm and never rescaled (as ``bias="per_layer"`` leaves b_i alone).
A column whose norm is at most c is multiplied by exactly 1, so it keeps every bit.
"""

from __future__ import annotations

import math

import numpy as np

from mlpkit.core.errors import ConfigError
from mlpkit.nn.mlp import MLP


def apply_max_norm(model: MLP, max_norm: float, *, output_layer: bool = False) -> int:
    """Rescale, in place, each hidden unit's incoming weight column whose L2 norm exceeds ``max_norm``.

    w <- w * c / ||w||  where ||w|| > c  (w the column without the bias row), else unchanged.

    Parameters
    ----------
    model : MLP
        Its weights are changed in place (the trainer calls this after each optimizer step).
    max_norm : float
        The largest allowed norm c, > 0 (3 to 4 in Srivastava et al. 2014).
    output_layer : bool, default False
        Constrain the output units' incoming weights too (the paper constrains hidden units).

    Returns
    -------
    int
        How many columns were rescaled.

    Raises
    ------
    ConfigError
        A ``max_norm`` that is not a positive finite number.
    """
    if isinstance(max_norm, bool) or not isinstance(max_norm, (int, float)) or not 0 < max_norm < math.inf:
        raise ConfigError(f"max_norm must be a positive number, got {max_norm!r}")
    c = float(max_norm)
    layers = model.weights if output_layer else model.weights[:-1]
    rescaled = 0
    for i, w in enumerate(layers):
        weights = w[:-1] if i == 0 and model.bias == "input_column" else w
        norms = np.sqrt(np.einsum("ij,ij->j", weights, weights))
        rescaled += int(np.count_nonzero(norms > c))
        np.maximum(norms, c, out=norms)
        np.divide(c, norms, out=norms)  # exactly 1 where the norm is <= c
        weights *= norms
    return rescaled
