"""Adam (Kingma & Ba 2015) with coupled L2 weight decay, and AdamW with decoupled weight decay
(Loshchilov & Hutter 2019): PyTorch's ``torch.optim.Adam`` / ``AdamW`` (amsgrad off), in place.

Why both: with Adam an L2 term added to the gradient is rescaled by the second moment like
the rest of the gradient, so large-gradient weights are barely decayed; AdamW shrinks every
weight by lr * wd directly, which is what "weight decay" is meant to do.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mlpkit.core.errors import ConfigError
from mlpkit.optim import hyperparameters as hp
from mlpkit.optim.optimizer import Optimizer, StateBuffer

__all__ = ["Adam", "AdamW", "adam_update"]


def adam_update(
    param: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_sq: np.ndarray,
    scratch: np.ndarray,
    decayed: np.ndarray | None,
    *,
    step: int,
    lr: float,
    betas: tuple[float, float],
    eps: float,
    weight_decay: float,
    decoupled: bool,
) -> None:
    """One Adam step ``step`` (counted from 1), in place, in PyTorch's order of operations:

    w <- w (1 - lr wd)                 (decoupled weight decay: AdamW)
    g <- g + wd w                      (coupled L2: Adam; ``decayed`` is its scratch)
    m <- m + (1 - b1) (g - m)
    v <- b2 v + (1 - b2) g^2
    w <- w - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
    """
    beta1, beta2 = betas
    g = grad
    if weight_decay:
        if decoupled:
            param *= 1 - lr * weight_decay
        else:
            assert decayed is not None
            np.multiply(param, weight_decay, out=decayed)
            decayed += grad
            g = decayed
    np.subtract(g, exp_avg, out=scratch)  # m.lerp_(g, 1 - b1) as torch computes it for weights < 0.5
    scratch *= 1 - beta1
    exp_avg += scratch
    exp_avg_sq *= beta2
    np.multiply(g, 1 - beta2, out=scratch)
    scratch *= g
    exp_avg_sq += scratch
    step_size = lr / (1 - beta1**step)
    np.sqrt(exp_avg_sq, out=scratch)
    scratch /= (1 - beta2**step) ** 0.5
    scratch += eps
    np.divide(exp_avg, scratch, out=scratch)
    scratch *= step_size
    param -= scratch


class Adam(Optimizer):
    """Adam: moments of the gradient and of its square, bias-corrected; L2 decay coupled.

    Equals ``torch.optim.Adam(lr, betas, eps, weight_decay)`` (amsgrad off): see
    :func:`adam_update` for the rule. The state is the step count and both moments.

    Parameters
    ----------
    params : sequence of ndarray
        The arrays to update in place (``model.parameters()``).
    lr : float
        The learning rate, > 0.
    betas : (float, float), default (0.9, 0.999)
        Decay rates of the first and second moments, each in [0, 1).
    eps : float, default 1e-8
        Added to the denominator, > 0.
    weight_decay : float, default 0.0
        L2 penalty, >= 0, added to the gradient (for the decoupled kind use :class:`AdamW`).

    Raises
    ------
    ConfigError
        A hyperparameter outside its range, naming it.
    """

    name = "adam"
    counts_steps = True
    decoupled = False

    def __init__(
        self,
        params: Sequence[np.ndarray],
        *,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr=lr)
        if isinstance(betas, (str, bytes)) or not isinstance(betas, Sequence) or len(betas) != 2:
            raise ConfigError(f"betas must be a pair of numbers in [0, 1), got {betas!r}")
        self.betas = (hp.unit_interval(betas[0], "betas[0]"), hp.unit_interval(betas[1], "betas[1]"))
        self.eps = hp.positive(eps, "eps")
        self.weight_decay = hp.non_negative(weight_decay, "weight_decay")
        self._exp_avg = self._state("exp_avg")
        self._exp_avg_sq = self._state("exp_avg_sq")
        self._scratch_buffer = self._scratch()
        self._decayed: StateBuffer | None = None  # g + wd w, made at the first step with coupled decay

    def _update(self, i: int, param: np.ndarray, grad: np.ndarray) -> None:
        if self.weight_decay and not self.decoupled and self._decayed is None:
            self._decayed = self._scratch()
        adam_update(
            param,
            grad,
            self._exp_avg.part(i),
            self._exp_avg_sq.part(i),
            self._scratch_buffer.part(i),
            None if self._decayed is None else self._decayed.part(i),
            step=self.steps,
            lr=self.lr,
            betas=self.betas,
            eps=self.eps,
            weight_decay=self.weight_decay,
            decoupled=self.decoupled,
        )


class AdamW(Adam):
    """Adam with decoupled weight decay: w <- w (1 - lr wd) before the Adam step.

    Equals ``torch.optim.AdamW(lr, betas, eps, weight_decay)`` (amsgrad off); the parameters
    are :class:`Adam`'s, with weight_decay defaulting to 0.01 as in PyTorch.
    """

    name = "adamw"
    decoupled = True

    def __init__(
        self,
        params: Sequence[np.ndarray],
        *,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
    ) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
