"""The compiled step runner for runs with the modern options (see
:mod:`mlpkit.engine.option_kernels`): it prepares what a run of steps needs that the kernel
cannot make itself, and advances the Python-side state after it.

Before a call: each step's dropout draws, from the training loop's generator in the order
``DropoutMasks.draw`` uses (step after step; input first, then each hidden layer), so a run's
random stream, and a resumed run, are the same as on the NumPy engine; and a float64 table of
each step's learning rate (from a copy of the schedule) and Adam's bias corrections. After it:
the optimizer's step count and the schedule are stepped once per applied step. When a loss is
not finite the kernel stops early; the masks of the steps after it were drawn all the same (the
run then ends with a DivergenceError).
"""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import TYPE_CHECKING

import numpy as np

from mlpkit.core.arrays import aligned_empty, aligned_zeros, flat_span
from mlpkit.engine.compiled import StepInputs, check_rows, kernel_layout
from mlpkit.nn.mlp import MLP
from mlpkit.optim.adam import Adam
from mlpkit.optim.sgd import SGD

if TYPE_CHECKING:  # pragma: no cover
    from mlpkit.engine.sparse import SparseRows
    from mlpkit.engine.step_options import StepOptions


class CompiledOptionSteps(StepInputs):
    """Runs training steps with dropout, label smoothing, a per-step schedule, clipping, max-norm,
    and SGD (any of its options), Adam or AdamW, in compiled code on the model's and the
    optimizer's own buffers. Same interface as :class:`mlpkit.engine.compiled.CompiledSteps`.

    Parameters
    ----------
    model : MLP
        Its activation must have a kernel code.
    optimizer : SGD or Adam
        Holds the model's parameters as one flat buffer (``optimizer_reason`` is None); its
        ``lr`` is read at every :meth:`run` (a plateau schedule may change it between runs).
    batch_size : int
        Rows per step (the epoch's last step may have fewer).
    x, y : ndarray
        The prepared training inputs (C-ordered, model dtype) and integer labels.
    sparse : SparseRows, optional
        The sparse form of ``x`` for the first layer; not used with input dropout.
    options : StepOptions
        Dropout, label smoothing, clipping, max-norm, the per-step schedule.
    rng : numpy.random.Generator, optional
        The training loop's generator; required with dropout.
    split : int, default 1
        Threads for the first layer's sparse products and the larger layers' updates
        (:mod:`mlpkit.engine.split_kernels`).
    """

    def __init__(
        self,
        model: MLP,
        optimizer: SGD | Adam,
        batch_size: int,
        x: np.ndarray,
        y: np.ndarray,
        sparse: SparseRows | None,
        options: StepOptions,
        rng: np.random.Generator | None,
        split: int = 1,
    ) -> None:
        from mlpkit.engine import cblas, dense_kernels, option_kernels, update_kernels

        dropout = options.dropout if options.dropout_active else None
        if dropout is not None and rng is None:
            raise ValueError("dropout draws its masks from a generator: pass rng (the training loop's)")
        self._kernel = option_kernels.train_steps_options
        self._k, self._uk = option_kernels, update_kernels
        dtype = model.dtype
        self.model, self.optimizer, self.batch_size, self.options, self.rng = model, optimizer, batch_size, options, rng
        self.y = np.ascontiguousarray(y, dtype=np.intp)
        if dropout is not None and dropout.input_rate > 0:
            sparse = None  # the first layer reads masked dense inputs
        self._bind_inputs(x, sparse, split)
        routines = cblas.routines(dtype.name)
        assert routines is not None, "why_not() is checked before a runner is made"
        self._gemm = routines[0]
        params = flat_span(optimizer.params)
        assert params is not None
        self._params = params
        self._grad = aligned_zeros(len(params), dtype)  # zeros between steps: the kernel's products add onto it
        self._adam = isinstance(optimizer, Adam)
        keys = ("exp_avg", "exp_avg_sq") if self._adam else ("velocity", "velocity")
        states = [optimizer.flat_state(key) for key in keys]
        assert states[0] is not None and states[1] is not None, "optimizer_reason() is checked first"
        self._opt = (self._grad, states[0], states[1])
        self._layout = kernel_layout(model)
        self._consts = dense_kernels.constants(dtype)
        width = sum(fan_out for _, fan_out in model.shapes)
        self._work = (
            np.empty((batch_size, model.input_width), dtype=dtype),
            np.empty(batch_size, dtype=np.intp),
            aligned_empty(2 * batch_size * width, dtype),
        )
        self._run_constants = self._constants()
        self._plan = np.zeros(option_kernels.N_PLAN, dtype=np.int64)
        self._plan_static()
        # dropout: which layer inputs are masked, how many draws each, where its draws and buffer sit
        rates = [0.0] + [0.0] * len(model.hidden)
        if dropout is not None:
            rates = [dropout.input_rate] + [dropout.hidden_rate] * len(model.hidden)
        self._units = [model.n_features, *model.hidden]
        widths = [model.input_width, *model.hidden]
        self._masked = [j for j, rate in enumerate(rates) if rate > 0]
        self._mask_at = np.full(len(rates), -1, dtype=np.int64)
        dropped_at = np.full(len(rates), -1, dtype=np.int64)
        draws = buffered = 0
        for j in self._masked:
            self._mask_at[j], dropped_at[j] = draws, buffered
            draws += batch_size * self._units[j]
            buffered += batch_size * widths[j]
        self._stride = draws
        self._dropped_at = dropped_at
        self._dropped = np.empty(buffered, dtype=dtype)
        self._uniform = np.empty(0, dtype=dtype)
        self._per_step = np.empty((0, update_kernels.N_STEP_CONSTANTS), dtype=np.float64)
        self.losses = np.empty(0, dtype=np.float64)

    def _constants(self) -> np.ndarray:
        uk, opt, options = self._uk, self.optimizer, self.options
        table = np.zeros(uk.N_RUN_CONSTANTS, dtype=np.float64)
        table[uk.H_WEIGHT_DECAY] = opt.weight_decay
        if isinstance(opt, Adam):
            beta1, beta2 = opt.betas
            table[uk.H_ONE_MINUS_BETA1], table[uk.H_BETA2], table[uk.H_ONE_MINUS_BETA2] = 1 - beta1, beta2, 1 - beta2
            table[uk.H_EPS] = opt.eps
        else:
            table[uk.H_MOMENTUM] = opt.momentum
        table[uk.H_SMOOTHING] = options.label_smoothing
        table[uk.H_CLIP] = options.clip_norm or 0.0
        table[uk.H_MAX_NORM] = options.max_norm or 0.0
        if options.dropout_active:
            assert options.dropout is not None
            for rate, at, scale_at in (
                (options.dropout.input_rate, uk.H_INPUT_RATE, uk.H_INPUT_SCALE),
                (options.dropout.hidden_rate, uk.H_HIDDEN_RATE, uk.H_HIDDEN_SCALE),
            ):
                table[at], table[scale_at] = rate, 1.0 / (1.0 - rate)  # as DropoutMasks.draw's kept *= 1 / (1 - p)
        return table

    def _plan_static(self) -> None:
        k, plan, options = self._k, self._plan, self.options
        dropout = options.dropout if options.dropout_active else None
        plan[k.P_BATCH_SIZE] = self.batch_size
        assert self.model.activation.kernel_code is not None
        plan[k.P_ACTIVATION] = self.model.activation.kernel_code
        plan[k.P_OPTIMIZER] = self._uk.OPT_ADAM if self._adam else self._uk.OPT_SGD
        nesterov = bool(getattr(self.optimizer, "nesterov", False))
        plan[k.P_FLAGS] = int(nesterov) | (2 if getattr(self.optimizer, "decoupled", False) else 0)
        plan[k.P_CLIP] = options.clip_norm is not None
        plan[k.P_MAX_NORM] = options.max_norm is not None
        plan[k.P_BIAS_ROW] = self.model.bias == "input_column"
        plan[k.P_INPUT_MASKED] = dropout is not None and dropout.input_rate > 0
        plan[k.P_HIDDEN_MASKED] = dropout is not None and dropout.hidden_rate > 0
        plan[k.P_N_FEATURES] = self.model.n_features

    def _learning_rates(self, n_steps: int) -> np.ndarray:
        """The lr of each of the next ``n_steps`` steps: the optimizer's, then what a copy of the
        schedule sets after each step (the schedule itself is stepped once the steps are done)."""
        lrs = np.empty(n_steps, dtype=np.float64)
        lrs[0] = self.optimizer.lr
        schedule = self.options.schedule
        if schedule is None:
            lrs[1:] = self.optimizer.lr
            return lrs
        preview = copy.copy(schedule)
        preview.optimizer = SimpleNamespace(lr=self.optimizer.lr)
        for s in range(1, n_steps):
            lrs[s] = preview.step()
        return lrs

    def _prepare(self, order: np.ndarray, first_step: int, n_steps: int) -> None:
        uk = self._uk
        if len(self._per_step) < n_steps:
            self._per_step = np.zeros((n_steps, uk.N_STEP_CONSTANTS), dtype=np.float64)
            self._uniform = np.empty(n_steps * self._stride, dtype=self.model.dtype)
            self.losses = np.empty(n_steps, dtype=np.float64)
        table = self._per_step
        lrs = self._learning_rates(n_steps)
        opt = self.optimizer
        for s in range(n_steps):
            lr = float(lrs[s])
            table[s, uk.S_LR] = lr
            if isinstance(opt, Adam):  # adam_update's float64 arithmetic, for step t
                t = opt.steps + s + 1
                beta1, beta2 = opt.betas
                table[s, uk.S_DECAY] = 1 - lr * opt.weight_decay
                table[s, uk.S_STEP_SIZE] = lr / (1 - beta1**t)
                table[s, uk.S_BC2_SQRT] = (1 - beta2**t) ** 0.5
        if self._masked:
            self._draw(order, first_step, n_steps)

    def _draw(self, order: np.ndarray, first_step: int, n_steps: int) -> None:
        """Each step's dropout draws, as ``DropoutMasks.draw`` makes them: step after step, the
        input's then each hidden layer's, ``rng.random`` in the model's dtype. The draws of full
        steps lie back to back in ``_uniform``, so they are one fill of the same stream: float32
        ones compiled (:func:`mlpkit.core.pcg64.fill_float32`, ~2x NumPy's speed: NumPy's took
        0.5 ms of a 9 ms step of the modern recipe); a short last step's are filled region by region."""
        rng = self.rng
        assert rng is not None
        bs, dtype = self.batch_size, self.model.dtype
        full = max(0, min(n_steps, len(order) // bs - first_step))
        if dtype == np.float32 and full > 0:
            from mlpkit.core.pcg64 import fill_float32

            fill_float32(rng, self._uniform[: full * self._stride])
        else:
            full = 0
        for s in range(full, n_steps):
            m = min(bs, len(order) - (first_step + s) * bs)
            for j in self._masked:  # DropoutMasks.draw: input first, then each hidden layer
                at = s * self._stride + int(self._mask_at[j])
                units = self._units[j]
                rng.random(out=self._uniform[at : at + m * units].reshape(m, units), dtype=dtype)

    def run(self, order: np.ndarray, first_step: int, n_steps: int) -> int:
        """Steps ``first_step .. first_step + n_steps - 1`` of the epoch with sample ``order``;
        returns how many were applied (see ``CompiledSteps.run``).

        Raises
        ------
        IndexError
            If the steps would read past ``order`` or outside ``x``.
        """
        check_rows(order, first_step, n_steps, self.batch_size, len(self.x))
        if n_steps == 0:
            return 0
        self._prepare(order, first_step, n_steps)
        k, plan = self._k, self._plan
        plan[k.P_FIRST_STEP], plan[k.P_STEPS], plan[k.P_MASK_STRIDE] = first_step, n_steps, self._stride
        masks = (self._uniform, self._mask_at, self._dropped, self._dropped_at)
        with self._threads():
            applied = self._call(order, masks)
        if self.optimizer.counts_steps:
            self.optimizer.steps += applied
        if self.options.schedule is not None:
            for _ in range(applied):
                self.options.schedule.step()
        return applied

    def _call(self, order: np.ndarray, masks: tuple[np.ndarray, ...]) -> int:
        return int(
            self._kernel(
                self._gemm,
                self.x,
                self._sparse_arguments,
                self.y,
                order,
                self._plan,
                self._params,
                self._layout,
                self._consts,
                self._work,
                self.losses,
                self._opt,
                (self._run_constants, self._per_step),
                masks,
            )
        )
