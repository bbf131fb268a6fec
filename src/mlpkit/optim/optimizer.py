"""What every optimizer shares: its parameters, state laid out like them, one update per buffer.

The optimizer knows nothing of the model: it gets lists of arrays and updates them in place.
When the arrays are consecutive views of one buffer (as ``MLP.parameters()`` and
``MLP.new_gradients()`` are), each state array (velocity, moments) is one buffer laid out the
same way, and an update runs once over the whole buffer instead of once per array: the same
arithmetic, element for element, in a few calls whatever the depth. A subclass writes its
update once, for one (param, grad) pair and the matching parts of its state.

The learning rate ``lr`` is a plain attribute read at every step, so that a schedule
(:mod:`mlpkit.optim.schedules`) can set it between steps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import numpy as np

from mlpkit.core.arrays import aligned_zeros, flat_span
from mlpkit.core.errors import CheckpointError
from mlpkit.optim import hyperparameters as hp

__all__ = ["Optimizer", "StateBuffer"]


def split_like(flat: np.ndarray, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Views of ``flat`` with the sizes and shapes of ``arrays``, one after the other."""
    views, offset = [], 0
    for a in arrays:
        views.append(flat[offset : offset + a.size].reshape(a.shape))
        offset += a.size
    return views


class StateBuffer:
    """One array per parameter (zeros, or uninitialized scratch), as one flat buffer when the
    parameters are one. ``part(i)`` is parameter ``i``'s array, ``part(-1)`` the flat buffer."""

    def __init__(self, params: Sequence[np.ndarray], flat_params: np.ndarray | None, *, scratch: bool) -> None:
        self.flat: np.ndarray | None
        if flat_params is not None:
            if scratch:
                self.flat = np.empty_like(flat_params)
            else:
                self.flat = aligned_zeros(len(flat_params), flat_params.dtype)
            self.views = split_like(self.flat, params)
        else:
            self.flat = None
            self.views = [np.empty_like(p) if scratch else np.zeros_like(p) for p in params]

    def part(self, i: int) -> np.ndarray:
        if i < 0:
            assert self.flat is not None
            return self.flat
        return self.views[i]


class Optimizer:
    """Base class: holds ``params`` and ``lr``, finds flat gradients, saves and loads state.

    Subclasses set ``name``, make their state with :meth:`_state` (saved in checkpoints) and
    :meth:`_scratch` (not saved), and implement :meth:`_update` for one part ``i`` (a
    parameter's index, or -1 for the whole flat buffer). Those that count steps set
    ``counts_steps``: the count is then part of the state as ``step``.

    Parameters
    ----------
    params : sequence of ndarray
        The arrays to update in place (``model.parameters()``).
    lr : float
        The learning rate, > 0; read at every step.
    """

    name: ClassVar[str] = ""
    counts_steps: ClassVar[bool] = False

    def __init__(self, params: Sequence[np.ndarray], *, lr: float) -> None:
        self.lr = hp.learning_rate(lr)
        self.params = list(params)
        self.steps = 0  # completed steps, counted (and saved) when counts_steps
        self._flat_params = flat_span(self.params)
        self._states: dict[str, StateBuffer] = {}
        self._grads_key: tuple[int, ...] = ()
        self._grads_seen: list[np.ndarray] = []  # keeps the ids in _grads_key alive
        self._flat_grads: np.ndarray | None = None

    def _state(self, key: str) -> StateBuffer:
        """A zeroed state array per parameter, saved under ``key.i``."""
        buffer = StateBuffer(self.params, self._flat_params, scratch=False)
        self._states[key] = buffer
        return buffer

    def flat_state(self, key: str) -> np.ndarray | None:
        """State ``key`` (e.g. ``"velocity"``) as one flat buffer laid out like the parameters,
        or None when the parameters are not one buffer or there is no such state (for engines
        that update it in compiled code)."""
        buffer = self._states.get(key)
        return None if buffer is None else buffer.flat

    def _scratch(self) -> StateBuffer:
        return StateBuffer(self.params, self._flat_params, scratch=True)

    def step(self, grads: Sequence[np.ndarray]) -> None:
        """Update every parameter in place from ``grads`` (one array per parameter)."""
        if self.counts_steps:
            self.steps += 1
        if self._flat_params is not None:
            key = tuple(map(id, grads))
            if key != self._grads_key:
                self._find_flat_grads(key, grads)
            if self._flat_grads is not None:
                self._update(-1, self._flat_params, self._flat_grads)
                return
        for i, (p, g) in enumerate(zip(self.params, grads)):
            self._update(i, p, g)

    def _update(self, i: int, param: np.ndarray, grad: np.ndarray) -> None:
        raise NotImplementedError

    def _find_flat_grads(self, key: tuple[int, ...], grads: Sequence[np.ndarray]) -> None:
        self._grads_key, self._grads_seen = key, list(grads)
        flat = flat_span(self._grads_seen)
        params = self._flat_params
        if flat is not None and params is not None and (flat.shape != params.shape or flat.dtype != params.dtype):
            flat = None
        self._flat_grads = flat

    def state_spec(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """The (shape, dtype) of each entry of :meth:`state_dict`: what a checkpoint must hold."""
        spec = {
            f"{key}.{i}": (v.shape, v.dtype) for key, buffer in self._states.items() for i, v in enumerate(buffer.views)
        }
        if self.counts_steps:
            spec["step"] = ((), np.dtype(np.int64))
        return spec

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of everything a resumed run needs to continue bit-identically."""
        state = {f"{key}.{i}": v.copy() for key, buffer in self._states.items() for i, v in enumerate(buffer.views)}
        if self.counts_steps:
            state["step"] = np.array(self.steps, dtype=np.int64)
        return state

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Load a :meth:`state_dict`; CheckpointError naming the key when it does not fit.

        Nothing is changed unless every key fits.
        """
        expected = {f"{key}.{i}": v for key, buffer in self._states.items() for i, v in enumerate(buffer.views)}
        for key, v in expected.items():
            if key not in state or np.shape(state[key]) != v.shape:
                raise CheckpointError(f"optimizer state does not fit: {key} missing or of wrong shape")
        steps = 0
        if self.counts_steps:
            value = state.get("step")
            if (
                not isinstance(value, np.ndarray)
                or value.shape != ()
                or not np.issubdtype(value.dtype, np.integer)
                or int(value) < 0
            ):
                raise CheckpointError("optimizer state does not fit: step missing or not a count >= 0")
            steps = int(value)
            expected["step"] = value
        extra = sorted(set(state) - set(expected))
        if extra:
            raise CheckpointError(f"optimizer state does not fit: {extra[0]} is not {self.name}'s")
        for key, v in expected.items():
            if key != "step":
                v[...] = state[key]
        self.steps = steps
