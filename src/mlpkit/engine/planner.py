"""The engine planner: given a model, an optimizer and the arrays of one ``fit``, choose how to run it.

It decides compiled or NumPy steps, dense or sparse inputs, how many BLAS threads the steps
use and how long a run of steps may be, and hands back an :class:`EnginePlan` with a step
runner and an evaluator. The training loop (:mod:`mlpkit.train.trainer`) only calls them.

Engines: ``"auto"`` (compiled when it applies), ``"compiled"`` (required: an error says why
not), ``"numpy"`` (never). ``MLPKIT_ENGINE=numpy`` turns ``"auto"`` into ``"numpy"``.
Importing this module does not import Numba.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from mlpkit.core import blas_env
from mlpkit.engine import memory
from mlpkit.engine.evaluator import EVAL_CHUNK, Evaluator
from mlpkit.engine.selection import compiled_reason, compiled_steps
from mlpkit.engine.step_options import StepOptions
from mlpkit.engine.threads import BlasThreads
from mlpkit.nn.mlp import MLP

if TYPE_CHECKING:  # pragma: no cover
    from mlpkit.engine.precompile import Helper
    from mlpkit.engine.sparse import SparseRows

#: A training step whose largest matrix product has fewer multiply-adds than this runs its
#: BLAS calls on one thread: for products this small, waking and joining a second thread
#: costs more than it saves, and far more when another process holds the other core.
SMALL_STEP_MACS = 4_000_000
#: The longest run of steps per call of a runner (runs also end at validations and epoch
#: ends), and the most forward multiply-adds a run may hold: both keep Ctrl-C and the
#: progress bar responsive, for small and for large models.
SEGMENT_STEPS = 512
SEGMENT_MACS = 1_000_000_000
#: Steps on several BLAS threads read the sparse inputs too when the first layer is at least this
#: wide, with its products split over the same number of threads (mlpkit.engine.split_kernels).
#: Measured on MNIST, batch 128, two threads, first layer's forward + weight gradient:
#: 1024 columns 1.2 ms split against 2.2 ms dense BLAS (2.1 ms on one thread, sparse); a whole
#: 784-1024-1024-10 step 6.5 ms against 7.7. Only with OpenBLAS's short idle spin
#: (mlpkit.core.blas_env): with its default one the steps were no faster than dense.
SPLIT_COLUMNS = 256


class StepRunner(Protocol):
    """What the training loop needs of an engine's steps."""

    losses: np.ndarray

    def run(self, order: np.ndarray, first_step: int, n_steps: int) -> int:
        """Apply up to ``n_steps`` steps; return how many (see ``CompiledSteps.run``)."""
        ...

    def use_inputs(self, x: np.ndarray, sparse: SparseRows | None) -> None:
        """Train on new inputs (and their sparse form) from the next run on."""
        ...

    def close(self) -> None: ...


def step_macs(model: MLP, batch_size: int) -> int:
    """Multiply-adds of a step's largest matrix product."""
    return batch_size * max(fan_in * fan_out for fan_in, fan_out in model.shapes)


def segment_steps(model: MLP, batch_size: int) -> int:
    """The longest run of steps: ``SEGMENT_STEPS``, fewer for steps of much work."""
    forward = batch_size * sum(fan_in * fan_out for fan_in, fan_out in model.shapes)
    return max(1, min(SEGMENT_STEPS, SEGMENT_MACS // max(1, forward)))


@dataclass
class EnginePlan:
    """How one ``fit`` runs: the step runner, the evaluator, and what was decided.

    Use :meth:`running` around the steps and :meth:`close` once at the end.
    """

    engine: str  # "compiled" or "numpy": which runner ``steps`` is
    steps: StepRunner
    evaluator: Evaluator
    sparse_steps: bool  # whether the steps read the sparse form of the training inputs
    step_threads: int | None  # the BLAS thread limit while steps run (None: as set outside)
    segment_steps: int  # the longest run of steps a call should ask for
    fallback_reason: str | None = None  # why the compiled steps were not used (engine "auto")
    _sparse_train: SparseRows | None = field(default=None, repr=False)
    _helper: Helper | None = field(default=None, repr=False)

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """The steps' BLAS thread limit; NumPy's overflow/NaN warnings silenced (divergence is
        detected from the losses and weights, and reported once, as a DivergenceError)."""
        limit = BlasThreads().limit(self.step_threads) if self.step_threads else contextlib.nullcontext()
        with limit, np.errstate(all="ignore"):
            yield

    def close(self) -> None:
        """Stop the worker threads and free the per-fit sparse inputs (returning their memory)."""
        self.evaluator.close()
        self.steps.close()
        if self._helper is not None:
            self._helper.close()
            self._helper = None
        if self._sparse_train is not None:
            self._sparse_train = None
            memory.trim()


def plan_engine(
    model: MLP,
    optimizer: object,
    *,
    batch_size: int,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray | None = None,
    engine: str = "auto",
    sparse_inputs: bool = True,
    sparse_training: bool = True,
    sparse_feed: bool = False,
    validation: bool = True,
    eval_chunk: int = EVAL_CHUNK,
    options: StepOptions | None = None,
    rng: np.random.Generator | None = None,
) -> EnginePlan:
    """Choose how to run one ``fit`` and build what it needs.

    Steps whose largest product is small (below ``SMALL_STEP_MACS``, e.g. the seed's batch 32)
    run BLAS on one thread. Inputs that are mostly one value per column (MNIST's blank
    pixels) get a sparse form, once per fit (:mod:`mlpkit.engine.sparse`): the compiled steps
    use it when their BLAS runs on one thread anyway, or when the first layer is wide enough
    (``SPLIT_COLUMNS``) for its sparse products to be split over the BLAS threads; the compiled
    validation chunks always.

    Parameters
    ----------
    model : MLP
        The model to train.
    optimizer : object
        Its optimizer; the compiled steps run mlpkit's SGD, Adam and AdamW (others run on NumPy).
    batch_size : int
        Rows per step.
    x_train, y_train : ndarray
        Prepared training inputs and intp labels.
    x_val : ndarray, optional
        Prepared validation inputs (None: no validation set).
    engine : {"auto", "compiled", "numpy"}, default "auto"
        See the module docstring.
    sparse_inputs : bool, default True
        Whether the compiled engine may use the sparse form where it pays.
    sparse_training : bool, default True
        Whether the steps may read the sparse form of ``x_train``; False when the steps train on
        other inputs every epoch (augmentation), while validation still reads ``x_train``.
    sparse_feed : bool, default False
        With ``sparse_training`` False: those inputs come with their sparse forms (the training
        loop hands both to ``steps.use_inputs`` each epoch), so the steps may read sparse inputs.
    validation : bool, default True
        Whether the fit will evaluate (then the evaluator gets the sparse forms too).
    eval_chunk : int, default EVAL_CHUNK
        Rows per evaluation chunk.
    options : StepOptions, optional
        Dropout, label smoothing, clipping, a per-step schedule, max-norm (default: none).
    rng : numpy.random.Generator, optional
        The training loop's generator (dropout draws its masks from it).

    Returns
    -------
    EnginePlan

    Raises
    ------
    ConfigError
        An unknown engine, or ``engine="compiled"`` where the compiled path cannot run
        (the message says why).
    """
    n = len(x_train)
    evaluator = Evaluator(model, chunk=eval_chunk, max_rows=max(0 if x_val is None else len(x_val), n), engine=engine)
    helper = _start_helper(evaluator, model, optimizer, options, x_train if x_val is None else x_val, validation)
    threads_now = BlasThreads().threads()
    small = step_macs(model, batch_size) < SMALL_STEP_MACS
    split = threads_now if not small and model.shapes[0][1] >= SPLIT_COLUMNS and blas_env.short_spin() else 1
    sparse_steps = (small or threads_now == 1 or split > 1) and (sparse_training or sparse_feed)
    sparse_train = None
    if sparse_inputs and evaluator.compiled and (sparse_steps or validation) and _sparse_fits(model):
        from mlpkit.engine.sparse import sparse_rows

        sparse_train = sparse_rows(x_train)
    options = options or StepOptions()
    runner: StepRunner | None = compiled_steps(
        engine,
        model,
        optimizer,
        batch_size,
        x_train,
        y_train,
        sparse_train if sparse_steps else None,
        options,
        rng,
        split=split,
    )
    if helper is not None:
        from mlpkit.engine.compiled import CompiledSteps

        if isinstance(runner, CompiledSteps):
            helper.wait_for_callees()
            runner.compile()  # needs forward's signature only (see mlpkit.engine.entry_points)
            helper.wait_for("forward")  # so that the runner loads it rather than compiles it too
    used = "compiled" if runner is not None else "numpy"
    uses_sparse = runner is not None and runner.sparse is not None  # type: ignore[attr-defined]
    reason = None
    if runner is None:
        from mlpkit.engine.numpy_steps import NumpySteps

        if engine != "numpy":
            reason = compiled_reason(model, optimizer, batch_size, x_train, options)
        runner = NumpySteps(
            model,
            optimizer,
            batch_size,
            x_train,
            y_train,
            workers=threads_now,
            dropout=options.dropout,
            rng=rng,
            label_smoothing=options.label_smoothing,
            clip_norm=options.clip_norm,
            schedule=options.schedule,
            max_norm=options.max_norm,
        )
    if validation and sparse_train is not None:
        from mlpkit.engine.sparse import sparse_rows

        evaluator.use_sparse(x_train, sparse_train)
        if x_val is not None and x_val is not x_train:
            evaluator.use_sparse(x_val, sparse_rows(x_val))
    return EnginePlan(
        engine=used,
        steps=runner,
        evaluator=evaluator,
        sparse_steps=uses_sparse,
        step_threads=1 if small else None,
        segment_steps=segment_steps(model, batch_size),
        fallback_reason=reason,
        _sparse_train=sparse_train,
        _helper=helper,
    )


def _sparse_fits(model: MLP) -> bool:
    from mlpkit.engine.sparse_kernels import fits

    return fits(model.shapes[0][1], model.dtype)


def _start_helper(
    evaluator: Evaluator,
    model: MLP,
    optimizer: object,
    options: StepOptions | None,
    x_eval: np.ndarray,
    validation: bool,
) -> Helper | None:
    """A process compiling kernels beside this one (:mod:`mlpkit.engine.precompile`) when the plain
    compiled SGD steps will run on a cold kernel cache; the evaluator waits for it."""
    compiled = evaluator.compiled_evaluation
    if compiled is None or (options is not None and options.active):
        return None
    from mlpkit.engine import cblas, precompile
    from mlpkit.engine.compiled import plain_sgd

    gemm = cblas.gemm(model.dtype.name)
    if gemm is None or not plain_sgd(optimizer):
        return None
    evaluate = compiled.argument_types(x_eval) if validation else None
    helper = precompile.start(model.dtype, gemm, evaluate, model.shapes[0][1])
    if helper is not None:
        if validation:
            evaluator.compiled_by(helper)
        helper.compile_training_callees()  # first: the helper loads the small ones it needs too
    return helper
