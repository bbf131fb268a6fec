"""Inverted dropout (Srivastava et al. 2014): random masks on a layer's inputs, training steps only.

Each training step keeps every input unit with probability 1 - p_in and every hidden unit
with probability 1 - p_hidden, and scales what it keeps by 1 / (1 - p), so that the
expected input of every layer is unchanged and evaluation/prediction use the weights as
they are (no dropout, no rescaling there).

:class:`Dropout` is the setting (two rates); :class:`DropoutMasks` holds the masks of one
batch size in preallocated buffers. The caller draws the masks of each step from the
generator it passes (the trainer's, so that a resumed run draws exactly the same masks)
and hands them to ``MLP.loss_and_gradients(..., dropout=masks)``. Masks are drawn for the
input first, then each hidden layer first to last, as one (rows, width) C-ordered block of
uniform numbers each (in the model's dtype); a unit is kept where its number is >= p. A
rate of 0 draws nothing, so a run without dropout draws exactly what it drew before.
The bias column of ``bias="input_column"`` is never dropped (it is not a unit).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from mlpkit.core.errors import ConfigError, InputError


class _Layers(Protocol):
    """What the masks need of a model (an :class:`~mlpkit.nn.mlp.MLP`)."""

    n_features: int
    input_width: int
    hidden: list[int]
    dtype: np.dtype


def _rate(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a number in [0, 1), got {value!r}")
    if not 0.0 <= value < 1.0:
        raise ConfigError(f"{name} must lie in [0, 1), got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Dropout:
    """Dropout rates: the probability that a unit is dropped in a training step.

    Parameters
    ----------
    input_rate : float, default 0.0
        For the input features (0.2 in Srivastava et al. 2014), in [0, 1).
    hidden_rate : float, default 0.0
        For every hidden layer's outputs (0.5 there), in [0, 1).

    Raises
    ------
    ConfigError
        A rate that is not a number in [0, 1).
    """

    input_rate: float = 0.0
    hidden_rate: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_rate", _rate("dropout input_rate", self.input_rate))
        object.__setattr__(self, "hidden_rate", _rate("dropout hidden_rate", self.hidden_rate))

    @property
    def active(self) -> bool:
        """Whether any unit can be dropped."""
        return self.input_rate > 0 or self.hidden_rate > 0

    def masks(self, model: _Layers, capacity: int) -> DropoutMasks:
        """Mask buffers for ``model`` and batches of up to ``capacity`` rows."""
        return DropoutMasks(self, model, capacity)


@dataclass
class _Layer:
    """One layer input's buffers: the scaled mask (keep / (1 - p)) and the masked input."""

    rate: float
    uniform: np.ndarray  # (capacity, units): the step's uniform draws
    mask: np.ndarray  # (capacity, width): 0 or 1 / (1 - p); 1 in the bias column
    dropped: np.ndarray  # (capacity, width): input * mask, what the layer reads


class DropoutMasks:
    """The dropout masks of one batch, in buffers allocated once for ``capacity`` rows.

    Layer input j is the network's input for j = 0 and hidden layer j - 1's output for
    j >= 1. Use :meth:`draw` (training) or :meth:`set` (fixed masks, for checks) before
    each ``loss_and_gradients``; the forward pass writes the masked inputs here and the
    backward pass reads them, so nothing is allocated in a step.

    Parameters
    ----------
    dropout : Dropout
        The rates.
    model : MLP
        The model the masks are for (its widths, bias mode and dtype).
    capacity : int
        The most rows of a batch.
    """

    def __init__(self, dropout: Dropout, model: _Layers, capacity: int) -> None:
        self.dropout = dropout
        self.capacity = int(capacity)
        self.dtype = np.dtype(model.dtype)
        self.units = [model.n_features, *model.hidden]  # what a mask covers (the bias column excluded)
        widths = [model.input_width, *model.hidden]
        rates = [dropout.input_rate] + [dropout.hidden_rate] * len(model.hidden)
        self.layers: list[_Layer | None] = []
        for rate, units, width in zip(rates, self.units, widths):
            if rate == 0:
                self.layers.append(None)
                continue
            mask = np.ones((self.capacity, width), dtype=self.dtype)
            uniform = np.empty((self.capacity, units), dtype=self.dtype)
            self.layers.append(_Layer(rate, uniform, mask, np.empty_like(mask)))
        self.rows = 0  # how many rows the current masks are for (0: none yet)

    def draw(self, rng: np.random.Generator, n: int) -> DropoutMasks:
        """New masks for a batch of ``n`` rows from ``rng`` (input first, then hidden layers)."""
        self._check_rows(n)
        for layer, units in zip(self.layers, self.units):
            if layer is None:
                continue
            uniform = layer.uniform[:n]
            rng.random(out=uniform, dtype=self.dtype)
            kept = layer.mask[:n, :units]
            np.greater_equal(uniform, layer.rate, out=kept)
            kept *= 1.0 / (1.0 - layer.rate)
        self.rows = n
        return self

    def set(self, keep: Sequence[np.ndarray | None]) -> DropoutMasks:
        """Use given masks: per layer input, a (n, units) array of 0/1 (1: kept), or None for
        a layer input whose rate is 0 (units: the features without the bias column, then
        each hidden width)."""
        if len(keep) != len(self.layers):
            raise InputError(f"expected {len(self.layers)} masks (the input, then each hidden layer), got {len(keep)}")
        n = None
        for j, (given, layer, units) in enumerate(zip(keep, self.layers, self.units)):
            if layer is None or given is None:
                if (layer is None) != (given is None):
                    raise InputError(f"mask {j}: give a mask exactly where the rate is not 0")
                continue
            given = np.asarray(given)
            n = given.shape[0] if n is None else n
            if given.shape != (n, units) or not np.isin(given, (0, 1)).all():
                raise InputError(f"mask {j} must be 0/1 values of shape ({n}, {units}), got {given.shape}")
            self._check_rows(n)
            np.multiply(given, 1.0 / (1.0 - layer.rate), out=layer.mask[:n, :units], casting="unsafe")
        self.rows = n or 0
        return self

    def _check_rows(self, n: int) -> None:
        if not 0 < n <= self.capacity:
            raise InputError(f"dropout masks for {n} rows do not fit buffers of {self.capacity}")

    # ------------------------------------------------------- used by MLP's passes
    def apply(self, j: int, a: np.ndarray) -> np.ndarray:
        """Layer input ``j`` after dropout: ``a`` * mask in this object's buffer (``a`` itself at rate 0)."""
        layer = self.layers[j]
        if layer is None:
            return a
        n = a.shape[0]
        if n != self.rows:
            raise InputError(f"the dropout masks are for {self.rows} rows, the batch has {n}: draw them first")
        return np.multiply(a, layer.mask[:n], out=layer.dropped[:n])

    def layer_input(self, j: int, a: np.ndarray) -> np.ndarray:
        """What layer ``j`` read in the last forward pass (``a`` when its input is not dropped)."""
        layer = self.layers[j]
        return a if layer is None else layer.dropped[: a.shape[0]]

    def backprop(self, j: int, delta: np.ndarray) -> np.ndarray:
        """delta *= mask_j, in place: d(loss)/d(a) from d(loss)/d(a * mask)."""
        layer = self.layers[j]
        if layer is not None:
            delta *= layer.mask[: delta.shape[0]]
        return delta
