"""Binds a model, its SGD optimizer and the training arrays to the compiled kernels.

The trainer asks :func:`compiled_steps` for a runner once per ``fit``; it gets None (and keeps
to the NumPy step) when the compiled path does not apply, and :func:`why_not` says why.
Engines: ``"auto"`` (compiled when it applies), ``"compiled"`` (required: an error says why
not), ``"numpy"`` (never).
"""

from __future__ import annotations

import os

import numpy as np

from mlpkit.core.errors import ConfigError
from mlpkit.nn.mlp import MLP
from mlpkit.core.arrays import flat_span
from mlpkit.optim.sgd import SGD
from mlpkit.engine.sparse import SparseRows


ENGINES = ("auto", "compiled", "numpy")
#: Set to "numpy" to turn the compiled path off everywhere (e.g. to compare the two).
ENV_VAR = "MLPKIT_ENGINE"


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}; valid: {', '.join(ENGINES)}")
    return engine


def sparse_arguments(sparse: SparseRows | None, dtype: np.dtype) -> tuple[np.ndarray, ...]:
    """``sparse`` as the kernels take it: (blocks, indices, values, base, block), empty when None.

    (The block width travels with the data rather than as a constant compiled into the
    kernels: Numba's cache would not notice a change of a constant from another module.)
    """
    if sparse is None:
        # uint16 indices, as MNIST-sized inputs have: one compiled kernel serves both cases
        return (np.empty((0, 2), np.int64), np.empty(0, np.uint16), np.empty(0, dtype), np.empty(0, dtype), 1)
    if sparse.values.dtype != dtype:
        raise ValueError(f"sparse inputs are {sparse.values.dtype}, the model {np.dtype(dtype).name}")
    return (sparse.blocks, sparse.indices, sparse.values, sparse.base, int(sparse.block))


def _model_reason(model: MLP) -> str | None:
    """None when the kernels can compute this model, else why not."""
    from mlpkit.engine import blas
    from mlpkit.engine import kernels

    if model.activation.name not in kernels.ACTIVATION_CODES:
        return f"activation {model.activation.name!r} has no compiled kernel"
    if model.activation is not _registered(model.activation.name):
        return f"activation {model.activation.name!r} is not the built-in one"
    if blas.routines(model.dtype.name) is None:
        return "no CBLAS gemm/axpy found in NumPy's BLAS library"
    return None


def why_not(model: MLP, optimizer, batch_size: int, x: np.ndarray) -> str | None:
    """None when the compiled steps can train this model on ``x``, else the reason they cannot."""
    if type(optimizer) is not SGD:
        return f"the optimizer is {type(optimizer).__name__}, not mlpkit's SGD"
    if reason := _model_reason(model):
        return reason
    params = model.parameters()
    if (len(optimizer.params) != len(params) or any(a is not b for a, b in zip(optimizer.params, params))
            or flat_span(optimizer.params) is None or flat_span(optimizer.velocity) is None):
        return "the optimizer does not hold the model's parameters as one flat buffer"
    if x.dtype != model.dtype or not x.flags.c_contiguous:
        return f"the training inputs are not C-ordered {model.dtype.name} (see model.prepare_inputs)"
    return None


def _registered(name: str):
    from mlpkit.nn.activations import ACTIVATIONS

    return ACTIVATIONS.get(name)


class CompiledSteps:
    """Runs SGD steps of one ``fit`` in compiled code, on the model's and optimizer's own buffers."""

    def __init__(self, model: MLP, optimizer: SGD, batch_size: int, x: np.ndarray, y: np.ndarray,
                 sparse: SparseRows | None = None) -> None:
        from mlpkit.engine import blas
        from mlpkit.engine import kernels

        self._kernel = kernels.train_steps
        dtype = model.dtype
        self.model, self.optimizer, self.batch_size = model, optimizer, batch_size
        self.x, self.y = x, np.ascontiguousarray(y, dtype=np.intp)
        if sparse is not None and sparse.shape != x.shape:
            raise ValueError(f"sparse inputs of shape {sparse.shape} for inputs of shape {x.shape}")
        self.sparse = sparse  # the first layer reads these instead of x (see mlpkit.engine.sparse)
        self._sp = sparse_arguments(sparse, dtype)
        self._gemm, self._axpy = blas.routines(dtype.name)
        self._params = flat_span(optimizer.params)
        self._velocity = flat_span(optimizer.velocity)
        self._layout = kernels.layer_layout(model)
        self._code = kernels.ACTIVATION_CODES[model.activation.name]
        self._k = kernels.constants(dtype)
        self._lr_at, self._momentum_at = kernels.LR, kernels.MOMENTUM
        width = sum(fan_out for _, fan_out in model.shapes)
        self._scratch = np.empty(2 * batch_size * width, dtype=dtype)  # outputs, then deltas
        self._plan = np.zeros(4, dtype=np.int64)
        self._xb = np.empty((batch_size, model.input_width), dtype=dtype)
        self._yb = np.empty(batch_size, dtype=np.intp)
        self.losses = np.empty(0, dtype=np.float64)

    def run(self, order: np.ndarray, first_step: int, n_steps: int) -> int:
        """Steps ``first_step .. first_step + n_steps - 1`` of the epoch with sample ``order``.

        Returns how many were applied; their losses are ``self.losses[:applied]`` and, when a
        loss was not finite, ``self.losses[applied]`` is that loss (its update not applied).
        """
        if len(self.losses) < n_steps:
            self.losses = np.empty(n_steps, dtype=np.float64)
        self._plan[:] = first_step, n_steps, self.batch_size, self._code
        self._k[self._lr_at], self._k[self._momentum_at] = self.optimizer.lr, self.optimizer.momentum  # read each time
        return int(self._kernel(self._gemm, self._axpy, self.x, self._sp, self.y, order, self._plan, self._params,
                                self._velocity, self._layout, self._k, self._xb, self._yb, self._scratch,
                                self.losses))


class CompiledEvaluation:
    """(summed cross-entropy, hits) of a chunk of prepared rows in one compiled call: the
    matrix products, activations, loss and argmax without NumPy temporaries. Releases the
    GIL, so several threads evaluate chunks at once (see ``trainer.Evaluator``)."""

    #: rows per block inside a call: every layer's outputs for a block stay in cache
    BLOCK_ROWS = 256

    def __init__(self, model: MLP) -> None:
        from mlpkit.engine import blas
        from mlpkit.engine import kernels

        self.model = model
        self._kernel = kernels.evaluate_rows
        self._gemm = blas.gemm(model.dtype.name)
        self._params = model._flat
        self._layout = kernels.layer_layout(model)
        self._code = kernels.ACTIVATION_CODES[model.activation.name]
        self._k = kernels.constants(model.dtype)
        self._width = sum(fan_out for _, fan_out in model.shapes)
        self._dense = sparse_arguments(None, model.dtype)

    def scratch(self) -> np.ndarray:
        """A buffer for one thread's calls."""
        return np.empty(self.BLOCK_ROWS * self._width, dtype=self.model.dtype)

    def accepts(self, x: np.ndarray, y: np.ndarray) -> bool:
        return (x.dtype == self.model.dtype and x.flags.c_contiguous and y.dtype == np.intp
                and y.flags.c_contiguous)

    def __call__(self, x: np.ndarray, y: np.ndarray, scratch: np.ndarray, sparse: SparseRows | None = None,
                 row0: int = 0) -> tuple[float, int]:
        """The chunk ``x``/``y``; with ``sparse`` (the sparse form of the array ``x`` is a
        slice of, from row ``row0``) the first layer reads that instead of ``x``."""
        sp = self._dense if sparse is None else sparse_arguments(sparse, self.model.dtype)
        loss_sum, hits = self._kernel(self._gemm, x, sp, row0, y, self._params, self._layout, self._code, self._k,
                                      scratch)
        return float(loss_sum), int(hits)


def compiled_evaluation(engine: str, model: MLP) -> CompiledEvaluation | None:
    """A :class:`CompiledEvaluation` for ``model``, or None for the NumPy path."""
    engine = check_engine(engine)
    if engine == "numpy" or (engine == "auto" and os.environ.get(ENV_VAR, "").strip().lower() == "numpy"):
        return None
    reason = _model_reason(model)
    if reason is None:
        return CompiledEvaluation(model)
    if engine == "compiled":
        raise ConfigError(f"engine 'compiled' cannot evaluate this model: {reason}")
    return None


def compiled_steps(engine: str, model: MLP, optimizer, batch_size: int, x: np.ndarray,
                   y: np.ndarray, sparse: SparseRows | None = None) -> CompiledSteps | None:
    """A :class:`CompiledSteps` for this fit, or None for the NumPy path (see the module docstring)."""
    engine = check_engine(engine)
    if engine == "auto" and os.environ.get(ENV_VAR, "").strip().lower() == "numpy":
        return None
    if engine == "numpy":
        return None
    reason = why_not(model, optimizer, batch_size, x)
    if reason is None:
        return CompiledSteps(model, optimizer, batch_size, x, y, sparse)
    if engine == "compiled":
        raise ConfigError(f"engine 'compiled' cannot train this run: {reason}")
    return None
