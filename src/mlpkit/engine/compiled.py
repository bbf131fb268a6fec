"""The compiled engine's plain-SGD step runner and chunk evaluation: a model, its SGD optimizer and the
training arrays bound to the kernels (:mod:`mlpkit.engine.kernels`).

The planner (:mod:`mlpkit.engine.planner`) builds these once per ``fit`` when
:func:`why_not` finds nothing against it. Importing this module does not import Numba; making
a runner does (and compiles the kernels on first use, or loads them from the cache).
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

import numpy as np

from mlpkit.core.arrays import aligned_empty, flat_span
from mlpkit.nn.mlp import MLP
from mlpkit.optim.adam import Adam, AdamW
from mlpkit.optim.optimizer import Optimizer
from mlpkit.optim.sgd import SGD

if TYPE_CHECKING:  # pragma: no cover
    from mlpkit.engine.cblas import Routine
    from mlpkit.engine.sparse import SparseRows


def kernel_layout(model: MLP) -> np.ndarray:
    """``model.layout`` as the kernels read it: int64 rows (weight offset, fan_in, fan_out,
    bias offset or -1), columns named by ``kernels.WEIGHT_OFFSET`` etc."""
    rows = [
        (layer.weight_offset, layer.fan_in, layer.fan_out, -1 if layer.bias_offset is None else layer.bias_offset)
        for layer in model.layout
    ]
    return np.array(rows, dtype=np.int64).reshape(len(rows), 4)


def sparse_arguments(sparse: SparseRows | None, dtype: np.dtype, pieces: int = 1) -> tuple[np.ndarray | int, ...]:
    """``sparse`` as the kernels take it: (blocks, indices, values, base, block), empty when None;
    with ``pieces`` > 1, a sixth entry: the first layer's products then run on that many threads
    (:mod:`mlpkit.engine.split_kernels`; the caller holds its ``PARALLEL_LOCK``).

    (The block width travels with the data rather than as a constant compiled into the
    kernels, so one compiled kernel serves every width.)
    """
    if sparse is None:
        # uint16 indices, as MNIST-sized inputs have: one compiled kernel serves both cases
        return (np.empty((0, 2), np.int64), np.empty(0, np.uint16), np.empty(0, dtype), np.empty(0, dtype), 1)
    if sparse.values.dtype != dtype:
        raise ValueError(f"sparse inputs are {sparse.values.dtype}, the model {np.dtype(dtype).name}")
    arguments = (sparse.blocks, sparse.indices, sparse.values, sparse.base, int(sparse.block))
    return (*arguments, int(pieces)) if pieces > 1 else arguments


def model_reason(model: MLP) -> str | None:
    """None when the kernels can compute this model, else why not."""
    from mlpkit.engine import cblas

    if model.activation.kernel_code is None:
        return f"activation {model.activation.name!r} has no compiled kernel"
    if cblas.routines(model.dtype.name) is None:
        return "no CBLAS gemm/axpy found in NumPy's BLAS library"
    return None


def optimizer_reason(optimizer: object) -> str | None:
    """None when the option kernel runs this optimizer's update, else why not."""
    if type(optimizer) not in (SGD, Adam, AdamW) or not isinstance(optimizer, Optimizer):
        if isinstance(optimizer, Optimizer) and optimizer.name not in (SGD.name, Adam.name, AdamW.name):
            return f"optimizer {optimizer.name} has no compiled kernel"
        return f"the optimizer is {type(optimizer).__name__}, not mlpkit's SGD, Adam or AdamW"
    keys = ("velocity",) if isinstance(optimizer, SGD) else ("exp_avg", "exp_avg_sq")
    if any(optimizer.flat_state(key) is None for key in keys):
        return "the optimizer does not hold the model's parameters as one flat buffer"
    return None


def why_not(model: MLP, optimizer: object, batch_size: int, x: np.ndarray) -> str | None:
    """None when compiled steps can train this model on ``x`` with this optimizer (plain SGD:
    :class:`CompiledSteps`; SGD with Nesterov or weight decay, Adam, AdamW, and every
    :class:`~mlpkit.engine.step_options.StepOptions`: :mod:`mlpkit.engine.option_steps`), else
    the reason they cannot."""
    if reason := optimizer_reason(optimizer):
        return reason
    assert isinstance(optimizer, Optimizer)
    if reason := model_reason(model):
        return reason
    params = model.parameters()
    if (
        len(optimizer.params) != len(params)
        or any(a is not b for a, b in zip(optimizer.params, params))
        or flat_span(optimizer.params) is None
    ):
        return "the optimizer does not hold the model's parameters as one flat buffer"
    if x.dtype != model.dtype or not x.flags.c_contiguous:
        return f"the training inputs are not C-ordered {model.dtype.name} (see model.prepare_inputs)"
    return None


def check_rows(order: np.ndarray, first_step: int, n_steps: int, batch_size: int, n_rows: int) -> None:
    """The kernels index the inputs with ``order`` unchecked: refuse anything they would read out
    of bounds (IndexError). Only the rows these steps read are checked, so the cost stays a
    small part of the steps'."""
    if not isinstance(order, np.ndarray) or order.ndim != 1 or order.dtype != np.intp:
        raise IndexError(f"the sample order must be a 1-D intp array, got {getattr(order, 'dtype', type(order))}")
    start, stop = first_step * batch_size, (first_step + n_steps) * batch_size
    if first_step < 0 or n_steps < 0 or (n_steps and start >= len(order)):
        raise IndexError(
            f"steps {first_step} .. {first_step + n_steps - 1} of {batch_size} rows are not"
            f" in a sample order of {len(order)}"
        )
    rows = order[start:stop]
    if len(rows) and (rows.min() < 0 or rows.max() >= n_rows):
        raise IndexError(
            f"the sample order holds indices outside 0..{n_rows - 1}"
            f" ({rows.min()} .. {rows.max()}) for steps {first_step} .. {first_step + n_steps - 1}"
        )


def plain_sgd(optimizer: object) -> bool:
    """Whether :class:`CompiledSteps` (the update riding on the gradient's product) runs this
    optimizer: mlpkit's SGD without Nesterov or weight decay, on a flat velocity."""
    return type(optimizer) is SGD and optimizer.plain and flat_span(optimizer.velocity) is not None


class StepInputs:
    """The training inputs a compiled runner reads, and their sparse form: set once, and again
    each epoch when the inputs change (augmentation, ``use_inputs``)."""

    model: MLP
    x: np.ndarray
    sparse: SparseRows | None
    split: int
    _reads_sparse: bool
    _split: int
    _sparse_arguments: tuple[np.ndarray | int, ...]

    def _bind_inputs(self, x: np.ndarray, sparse: SparseRows | None, split: int) -> None:
        """The first inputs: whether the runner reads sparse forms is decided here, for good
        (never for a first layer the sparse kernels do not take, see ``sparse_kernels.fits``)."""
        from mlpkit.engine.sparse_kernels import fits

        self._reads_sparse = sparse is not None and fits(self.model.shapes[0][1], self.model.dtype)
        self._split = split
        self.use_inputs(x, sparse)

    def use_inputs(self, x: np.ndarray, sparse: SparseRows | None) -> None:
        """Train on ``x`` from the next run on; its sparse form ``sparse`` is read when the runner
        was made to read sparse inputs (else ignored; None: the dense ``x``)."""
        sparse = sparse if self._reads_sparse else None
        if sparse is not None and sparse.shape != x.shape:
            raise ValueError(f"sparse inputs of shape {sparse.shape} for inputs of shape {x.shape}")
        self.x = x
        self.sparse = sparse  # the first layer reads these instead of x (see mlpkit.engine.sparse)
        self.split = self._split if sparse is not None else 1
        self._sparse_arguments = sparse_arguments(sparse, self.model.dtype, self.split)

    def close(self) -> None:
        """Let go of the sparse inputs (the runner can still run, on the dense ones)."""
        self._reads_sparse = False
        self.use_inputs(self.x, None)

    def _threads(self) -> AbstractContextManager[None]:
        """Around a kernel call: :func:`mlpkit.engine.split_kernels.split_threads` for split
        steps, nothing otherwise."""
        if self.split <= 1:
            return contextlib.nullcontext()
        from mlpkit.engine.split_kernels import split_threads

        return split_threads(self.split)


class CompiledSteps(StepInputs):
    """Runs SGD steps of one ``fit`` in compiled code, on the model's and optimizer's own buffers.

    The step-runner interface (shared with :class:`mlpkit.engine.numpy_steps.NumpySteps`):
    ``run(order, first_step, n_steps) -> applied`` and ``losses[:applied]``.

    Parameters
    ----------
    model : MLP
        Its activation must have a kernel code (see :func:`why_not`).
    optimizer : SGD
        Holds the model's parameters as one flat buffer; its ``lr`` and ``momentum`` are
        read at every :meth:`run`.
    batch_size : int
        Rows per step (the epoch's last step may have fewer).
    x, y : ndarray
        The prepared training inputs (C-ordered, model dtype) and integer labels.
    sparse : SparseRows, optional
        The sparse form of ``x``: the first layer then reads it instead of ``x``.
    split : int, default 1
        Threads for the first layer's sparse products (:mod:`mlpkit.engine.split_kernels`).
    """

    _entries: tuple[Routine, Routine] | None  # (forward, sparse weight gradient), see _call

    def __init__(
        self,
        model: MLP,
        optimizer: SGD,
        batch_size: int,
        x: np.ndarray,
        y: np.ndarray,
        sparse: SparseRows | None = None,
        split: int = 1,
    ) -> None:
        from mlpkit.engine import cblas, dense_kernels, kernels

        self._kernel = kernels.train_steps
        dtype = model.dtype
        self.model, self.optimizer, self.batch_size = model, optimizer, batch_size
        self.y = np.ascontiguousarray(y, dtype=np.intp)
        self._bind_inputs(x, sparse, split)
        routines = cblas.routines(dtype.name)
        assert routines is not None, "why_not() is checked before a CompiledSteps is made"
        self._gemm, self._axpy = routines
        self._params = flat_span(optimizer.params)
        self._velocity = flat_span(optimizer.velocity)
        self._layout = kernel_layout(model)
        self._consts = dense_kernels.constants(dtype)
        self._lr_at, self._momentum_at = dense_kernels.LR, dense_kernels.MOMENTUM
        width = sum(fan_out for _, fan_out in model.shapes)
        self._scratch = aligned_empty(2 * batch_size * width, dtype)  # outputs, then deltas
        self._plan = np.zeros(4, dtype=np.int64)
        assert model.activation.kernel_code is not None, "why_not() is checked first"
        self._code: int = model.activation.kernel_code
        self._xb = np.empty((batch_size, model.input_width), dtype=dtype)
        self._yb = np.empty(batch_size, dtype=np.intp)
        self.losses = np.empty(0, dtype=np.float64)

    def run(self, order: np.ndarray, first_step: int, n_steps: int) -> int:
        """Steps ``first_step .. first_step + n_steps - 1`` of the epoch with sample ``order``.

        Returns how many were applied; their losses are ``self.losses[:applied]`` and, when a
        loss was not finite, ``self.losses[applied]`` is that loss (its update not applied).

        Raises
        ------
        IndexError
            If the steps would read past ``order``, or the rows of ``order`` they read are not
            all indices of ``x`` (checked here: the kernel does not check its indices).
        """
        self._check_rows(order, first_step, n_steps)
        if len(self.losses) < n_steps:
            self.losses = np.empty(n_steps, dtype=np.float64)
        self._plan[:] = first_step, n_steps, self.batch_size, self._code
        self._consts[self._lr_at] = self.optimizer.lr  # read each time: a schedule may change them
        self._consts[self._momentum_at] = self.optimizer.momentum
        with self._threads():
            return self._call(order)

    def use_inputs(self, x: np.ndarray, sparse: SparseRows | None) -> None:
        super().use_inputs(x, sparse)
        self._entries = None  # the kernels it calls through their address: looked up for these inputs

    def _call(self, order: np.ndarray) -> int:
        if self._entries is None:
            self._entries = (self._forward(), self._gradient())
        forward, gradient = self._entries
        applied = int(self._kernel(*self._arguments(order, forward, gradient)))
        if applied < 0:
            raise MemoryError("a compiled step found no memory for its buffers")
        return applied

    def _arguments(self, order: np.ndarray, forward: Routine, gradient: Routine) -> tuple[object, ...]:
        return (
            self._gemm,
            self._axpy,
            forward,
            gradient,
            self.x,
            self._sparse_arguments,
            self.y,
            order,
            self._plan,
            self._params,
            self._velocity,
            self._layout,
            self._consts,
            self._xb,
            self._yb,
            self._scratch,
            self.losses,
        )

    def _signatures(self) -> tuple[object, object]:
        """What the steps kernel calls ``forward`` and ``sparse_weight_gradient`` with."""
        from numba import typeof

        from mlpkit.engine import entry_points

        dtype, sp_type = self.model.dtype, typeof(self._sparse_arguments)
        return (
            entry_points.forward_signature(dtype, self._gemm, typeof(self._xb), sp_type),
            entry_points.gradient_signature(dtype, sp_type),
        )

    def _forward(self) -> Routine:
        """The model's ``kernels.forward_kernel`` for these inputs, compiled or loaded (see
        mlpkit.engine.entry_points)."""
        from mlpkit.engine import entry_points, kernels

        return entry_points.entry_point(kernels.forward_kernel(self.model.shapes[0][1]), self._signatures()[0])

    def _gradient(self) -> Routine:
        """``sparse_weight_gradient`` (``wide_weight_gradient`` for a first layer of ``PACK_COLUMNS``
        or more) for these inputs when the kernel calls it (sparse inputs on one thread), else a
        stand-in of its type that the kernel does not call."""
        from mlpkit.engine import entry_points, sparse_kernels

        signature = self._signatures()[1]
        if self.sparse is None or self.split > 1:
            return entry_points.signature_value(signature)
        wide = self.model.shapes[0][1] >= sparse_kernels.PACK_COLUMNS
        kernel = sparse_kernels.wide_weight_gradient if wide else sparse_kernels.sparse_weight_gradient
        return entry_points.entry_point(kernel, signature)

    def compile(self) -> None:
        """Compile the steps kernel (or load it) and the sparse weight gradient it calls, before
        ``forward`` exists: that is called through its address, so only its signature is needed
        (see mlpkit.engine.precompile)."""
        from numba import typeof

        from mlpkit.engine import entry_points

        stand_ins = [entry_points.signature_value(signature) for signature in self._signatures()]
        self._kernel.compile(tuple(typeof(a) for a in self._arguments(np.empty(0, np.intp), *stand_ins)))
        self._gradient()

    def _check_rows(self, order: np.ndarray, first_step: int, n_steps: int) -> None:
        check_rows(order, first_step, n_steps, self.batch_size, len(self.x))


class CompiledEvaluation:
    """(summed cross-entropy, hits) of a chunk of prepared rows in one compiled call: the
    matrix products, activations, loss and argmax without NumPy temporaries. Releases the
    GIL, so several threads evaluate chunks at once (see :class:`mlpkit.engine.evaluator.Evaluator`)."""

    #: rows per block inside a call: every layer's outputs for a block stay in cache
    BLOCK_ROWS = 256
    #: for deep stacks of narrow layers (at least DEEP_LAYERS layers, none wider than
    #: NARROW_WIDTH): their blocks' outputs fill the cache sooner and their products are small.
    #: Measured on MNIST with two workers, ten layers of 64: a validation pass 25.4-26.4 ms with
    #: 256 rows, 23.8-23.9 with 128 (64: 24.1-24.8); one layer of 64 and 2 x 1024 kept 256.
    DEEP_BLOCK_ROWS, DEEP_LAYERS, NARROW_WIDTH = 128, 4, 256

    def __init__(self, model: MLP) -> None:
        from mlpkit.engine import cblas, dense_kernels, kernels, sparse_kernels

        self.model = model
        self._kernel = kernels.evaluate_rows
        self._gemm = cblas.gemm(model.dtype.name)
        self._params = model.flat_parameters
        self._layout = kernel_layout(model)
        self._code = model.activation.kernel_code
        self._consts = dense_kernels.constants(model.dtype)
        self._width = sum(fan_out for _, fan_out in model.shapes)
        deep = len(model.shapes) >= self.DEEP_LAYERS and max(f for _, f in model.shapes) <= self.NARROW_WIDTH
        self.block_rows = self.DEEP_BLOCK_ROWS if deep else self.BLOCK_ROWS
        self._dense = sparse_arguments(None, model.dtype)
        self._takes_sparse = sparse_kernels.fits(model.shapes[0][1], model.dtype)
        self._entries: dict[tuple[bool, bool, np.dtype | None], Routine] = {}  # forward by the chunks' types (__call__)

    def scratch(self) -> np.ndarray:
        """A buffer for one thread's calls."""
        return aligned_empty(self.block_rows * self._width, self.model.dtype)

    def forward_signature(self, x: np.ndarray, sp: tuple[np.ndarray | int, ...]) -> object:
        """The signature the kernel calls ``kernels.forward`` with for chunks of ``x`` and sparse
        arguments ``sp`` (see mlpkit.engine.entry_points)."""
        from numba import typeof

        from mlpkit.engine import entry_points

        assert self._gemm is not None, "compiled_evaluation() makes one only where cblas.gemm is found"
        return entry_points.forward_signature(self.model.dtype, self._gemm, typeof(x[:0]), typeof(sp))

    def argument_types(self, x: np.ndarray) -> tuple[object, ...]:
        """The Numba types of the kernel's arguments for chunks of ``x`` (see mlpkit.engine.precompile)."""
        from numba import typeof

        from mlpkit.engine import entry_points

        forward = entry_points.signature_value(self.forward_signature(x, self._dense))
        args = (self._gemm, forward, x[:0], self._dense, 0, np.empty(0, np.intp), self._params, self._layout)
        return tuple(typeof(a) for a in (*args, self._code, self._consts, self._consts[:0]))

    def accepts(self, x: np.ndarray, y: np.ndarray) -> bool:
        return x.dtype == self.model.dtype and x.flags.c_contiguous and y.dtype == np.intp and y.flags.c_contiguous

    def __call__(
        self, x: np.ndarray, y: np.ndarray, scratch: np.ndarray, sparse: SparseRows | None = None, row0: int = 0
    ) -> tuple[float, int]:
        """The chunk ``x``/``y``; with ``sparse`` (the sparse form of the array ``x`` is a
        slice of, from row ``row0``) the first layer reads that instead of ``x``."""
        if sparse is not None and not self._takes_sparse:
            sparse = None  # a first layer narrower than the sparse kernels take: the dense inputs
        sp = self._dense if sparse is None else sparse_arguments(sparse, self.model.dtype)
        indices = None if sparse is None else sparse.indices.dtype
        key = (x.flags.writeable, x.flags.aligned, indices)  # what decides the types (x: C-ordered, see accepts)
        forward = self._entries.get(key)
        if forward is None:
            from mlpkit.engine import entry_points, kernels

            kernel = kernels.forward_kernel(self.model.shapes[0][1])
            forward = self._entries[key] = entry_points.entry_point(kernel, self.forward_signature(x, sp))
        loss_sum, hits = self._kernel(
            self._gemm, forward, x, sp, row0, y, self._params, self._layout, self._code, self._consts, scratch
        )
        if hits < 0:
            raise MemoryError("the compiled forward pass found no memory for its buffers")
        return float(loss_sum), int(hits)
