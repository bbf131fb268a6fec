"""The training loop: mini-batch SGD over shuffled indices, periodic validation, callbacks.

The loop itself only computes; recording, early stopping, checkpoints and the progress bar
are callbacks. Its whole state (weights, optimizer, RNG, position in the epoch, callbacks)
can be saved and loaded, so a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from mlpkit.engine import memory
from mlpkit.train.callbacks import Callback
from mlpkit.engine.compiled import CompiledSteps, check_engine, compiled_evaluation, compiled_steps
from mlpkit.core.errors import ConfigError, DivergenceError, InputError
from mlpkit.nn.losses import cross_entropy_sum_and_hits
from mlpkit.nn.mlp import MLP, Workspace
from mlpkit.optim.sgd import SGD
from mlpkit.engine.sparse import SparseRows, sparse_rows


@dataclass
class TrainState:
    """Where training stands; enough (with weights and optimizer) to resume exactly."""

    epoch: int = 0  # completed epochs
    step: int = 0  # completed gradient steps
    step_in_epoch: int = 0
    perm: np.ndarray | None = None  # this epoch's order of training indices
    interrupted: bool = False
    diverged: bool = False
    last_finite_loss: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _all_finite(x: np.ndarray, rows: int = 4096) -> bool:
    """np.isfinite(x).all() in row blocks: no boolean temporary the size of the data."""
    return all(np.isfinite(x[i : i + rows]).all() for i in range(0, len(x), rows))


def _check_prepared(model: MLP, x: np.ndarray, y: np.ndarray, which: str) -> np.ndarray:
    """Clear errors for arrays that did not come from ``model.prepare_inputs``; the labels as intp."""
    if not isinstance(x, np.ndarray) or x.ndim != 2 or x.shape[1] != model.input_width:
        raise InputError(f"{which} inputs must come from model.prepare_inputs: shape (samples,"
                         f" {model.input_width}), got {np.shape(x)}")
    if len(x) == 0:
        raise InputError(f"{which} inputs are empty (0 samples)")
    if not np.issubdtype(x.dtype, np.floating) or not _all_finite(x):
        raise InputError(f"{which} inputs must be finite floats (dtype {x.dtype}); see model.prepare_inputs")
    return model.check_labels(y, len(x))


#: A training step whose largest matrix product has fewer multiply-adds than this runs its
#: BLAS calls on one thread: for products this small, waking and joining a second thread
#: costs more than it saves, and far more when another process holds the other core.
SMALL_STEP_MACS = 4_000_000
#: Rows per validation chunk: one matrix product per layer and chunk, outputs that stay in cache.
EVAL_CHUNK = 2048
#: The compiled path's longest run of steps per call (runs also end at validations and
#: epoch ends): keeps Ctrl-C and the progress bar responsive.
SEGMENT_STEPS = 512


def _overrides(cb: Callback, hook: str) -> bool:
    """Does ``cb`` do something in ``hook`` (a method of its class, or one set on the instance)?"""
    return getattr(type(cb), hook) is not getattr(Callback, hook) or hook in vars(cb)


def _step_macs(model: MLP, batch_size: int) -> int:
    return batch_size * max(fan_in * fan_out for fan_in, fan_out in model.shapes)


class _Blas:
    """The BLAS libraries loaded in this process (through threadpoolctl)."""

    def __init__(self) -> None:
        from threadpoolctl import ThreadpoolController

        self._libs = ThreadpoolController().select(user_api="blas")

    def threads(self) -> int:
        """The thread limit in force now (the largest over the loaded BLAS libraries)."""
        return max([lib.num_threads for lib in self._libs.lib_controllers] or [1])

    def limit(self, n: int):
        """A context manager: at most ``n`` BLAS threads inside it (no-op when already so)."""
        if self.threads() <= n:
            return contextlib.nullcontext()
        return self._libs.limit(limits=n)


class Evaluator:
    """Mean loss and accuracy over a dataset, in chunks of ``chunk`` rows, on ``workers`` threads.

    Each chunk is one matrix product per layer plus a few vectorized passes over its logits.
    The calling thread and ``workers - 1`` pool threads each own a workspace, run BLAS on one
    thread, and take the next chunk when done with one: a core that another process holds
    slows the pass down instead of stalling it, as a static split between BLAS threads does.
    Chunk results are added in chunk order, so the numbers are those of
    ``model.evaluate(x, y, model.workspace(chunk))`` whichever thread computed what.
    ``max_rows``: the largest dataset it will see (chunks are never larger);
    ``workers=None``: the BLAS thread limit in force at construction (``--threads``).
    """

    def __init__(self, model: MLP, *, max_rows: int, chunk: int | None = None, workers: int | None = None,
                 engine: str = "auto") -> None:
        self.model = model
        self.chunk = max(1, min(chunk or EVAL_CHUNK, max_rows))
        self._blas = _Blas()
        workers = self._blas.threads() if workers is None else workers
        self.workspaces = [model.workspace(self.chunk) for _ in range(max(1, workers))]
        self.pool = ThreadPoolExecutor(len(self.workspaces) - 1) if len(self.workspaces) > 1 else None
        # the compiled chunk evaluation, when it applies (see mlpkit.engine.compiled); one scratch per worker
        self._compiled = compiled_evaluation(engine, model)
        self._scratch = {id(ws): self._compiled.scratch() for ws in self.workspaces} if self._compiled else {}
        self._sparse: dict[int, tuple[np.ndarray, SparseRows]] = {}

    @property
    def compiled(self) -> bool:
        """Whether chunks are evaluated in compiled code (see mlpkit.engine.compiled)."""
        return self._compiled is not None

    def use_sparse(self, x: np.ndarray, sparse: SparseRows | None) -> None:
        """From now on, chunks of ``x`` (this very array, which must not change) are computed
        from its sparse form (see mlpkit.engine.sparse); None forgets it."""
        if sparse is None:
            self._sparse.pop(id(x), None)
        elif self._compiled is not None:
            if sparse.shape != x.shape:
                raise ValueError(f"sparse inputs of shape {sparse.shape} for inputs of shape {x.shape}")
            self._sparse[id(x)] = (x, sparse)

    def _sparse_of(self, x: np.ndarray) -> SparseRows | None:
        held = self._sparse.get(id(x))
        return held[1] if held is not None and held[0] is x else None

    def _chunk(self, x: np.ndarray, y: np.ndarray, ws: Workspace, sparse: SparseRows | None = None,
               row0: int = 0) -> tuple[float, int]:
        """(summed loss, hits) of one chunk, computed in ``ws`` (or its compiled scratch; from
        ``sparse`` rows ``row0 ..`` when given)."""
        if self._compiled is not None and self._compiled.accepts(x, y):
            return self._compiled(x, y, self._scratch[id(ws)], sparse, row0)
        return cross_entropy_sum_and_hits(self.model.forward(x, ws), y, scratch=ws.loss)

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """(mean cross-entropy, accuracy) of prepared inputs ``x`` and integer labels ``y``."""
        return self.evaluate_many([(x, y)])[0]

    def evaluate_many(self, datasets: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[tuple[float, float]]:
        """``evaluate`` for several datasets as one job: the workers share all their chunks,
        so none waits at the end of a dataset (validation: the validation and training sets)."""
        if self.pool is None and self._compiled is None:
            return [self.model.evaluate(x, y, self.workspaces[0]) for x, y in datasets]
        datasets = [(x, np.ascontiguousarray(y, dtype=np.intp)) for x, y in datasets]  # as the kernel takes them
        sparse = [self._sparse_of(x) for x, _ in datasets]
        chunk, evaluate_chunk = self.chunk, self._chunk
        jobs = []  # (dataset index, first row) of every chunk, datasets one after the other
        for d, (x, _) in enumerate(datasets):
            jobs.extend((d, s) for s in range(0, len(x), chunk))
        results: list[tuple[float, int]] = [(0.0, 0)] * len(jobs)
        tickets = itertools.count()  # next() on it is atomic under the GIL

        def work(ws: Workspace) -> None:
            while (j := next(tickets)) < len(jobs):
                d, s = jobs[j]
                x, y = datasets[d]
                results[j] = evaluate_chunk(x[s : s + chunk], y[s : s + chunk], ws, sparse[d], s)

        with self._blas.limit(1):
            helpers = [self.pool.submit(work, ws) for ws in self.workspaces[1:]] if self.pool else []
            try:
                work(self.workspaces[0])
            finally:
                for h in helpers:
                    h.result()
        totals = [[0.0, 0] for _ in datasets]
        for (d, _), (loss_sum, hits) in zip(jobs, results):  # in chunk order, as model.evaluate adds
            totals[d][0] += loss_sum
            totals[d][1] += hits
        return [(loss / len(x), hits / len(x)) for (loss, hits), (x, _) in zip(totals, datasets)]

    def close(self) -> None:
        self._sparse.clear()
        if self.pool is not None:
            self.pool.shutdown()
            self.pool = None

    def __enter__(self) -> "Evaluator":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Trainer:
    """Trains an :class:`MLP` with an optimizer on prepared arrays.

    ``x_train``/``x_val`` must be prepared by ``model.prepare_inputs`` (dtype, bias column);
    labels are integer arrays. Validation runs every ``steps_per_epoch // validations_per_epoch``
    steps (never if it is 0) and records validation loss/accuracy and training loss/accuracy
    over the whole training set, each computed as a few large matrix products (:class:`Evaluator`).

    Performance: a run allocates its buffers once (workspaces, gradients, evaluator); a step
    gathers its batch into a preallocated buffer and allocates no arrays. Steps whose largest
    matrix product is small (below ``SMALL_STEP_MACS``, e.g. the seed's batch 32) run BLAS on
    one thread and, with ``engine="auto"``, in compiled code (:mod:`mlpkit.engine.compiled`): up to a
    validation per call, the callbacks' ``on_steps_end`` told afterwards. Validation spreads
    chunks over as many threads as the BLAS limit in force (``train.threads`` / ``--threads``).
    """

    def __init__(
        self,
        model: MLP,
        optimizer: SGD,
        *,
        rng: np.random.Generator,
        epochs: int,
        batch_size: int,
        shuffle: bool = True,
        drop_last: bool = True,
        validations_per_epoch: int = 5,
        callbacks: Sequence[Callback] = (),
        eval_chunk: int = EVAL_CHUNK,
        engine: str = "auto",
    ) -> None:
        if epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {epochs}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.optimizer = optimizer
        self.rng = rng
        self.epochs = epochs
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.validations_per_epoch = validations_per_epoch
        self.callbacks = list(callbacks)
        self.eval_chunk = eval_chunk
        self.engine = check_engine(engine)
        self.segment_steps = SEGMENT_STEPS  # the compiled path's longest run of steps per call
        self.sparse_inputs = True  # let the compiled path use sparse inputs (mlpkit.engine.sparse) where they pay
        self.engine_used: str | None = None  # "compiled" or "numpy", set by fit
        self.sparse_used = False  # whether the last fit ran its first layer on sparse inputs
        self.state = TrainState()
        self.stop_training = False
        self.steps_per_epoch = 0
        self.total_steps = 0
        self.validate_every = 0

    # ------------------------------------------------------------------ geometry
    def _plan(self, n_train: int) -> None:
        if self.batch_size > n_train:
            raise ConfigError(f"batch_size {self.batch_size} is larger than the training set ({n_train} samples)")
        full, rest = divmod(n_train, self.batch_size)
        self.steps_per_epoch = full if (self.drop_last or rest == 0) else full + 1
        self.total_steps = self.steps_per_epoch * self.epochs
        # validations_per_epoch = 0: no validation at all
        vpe = self.validations_per_epoch
        self.validate_every = max(1, self.steps_per_epoch // vpe) if vpe > 0 else 0

    # ---------------------------------------------------------------------- fit
    def fit(self, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray) -> TrainState:
        """Train until ``epochs`` are done, early stopping fires, Ctrl-C, or divergence.

        Ctrl-C stops cleanly after the current step and keeps everything done so far.
        Divergence (a non-finite loss or weight) raises :class:`DivergenceError` after the
        callbacks' ``on_train_end`` ran, so the history and last checkpoint are on disk.
        """
        model, state, bs = self.model, self.state, self.batch_size
        y_train = _check_prepared(model, x_train, y_train, "training")
        y_val = _check_prepared(model, x_val, y_val, "validation")
        n = len(x_train)
        self._plan(n)
        # Everything the loop writes into is allocated here, once per run.
        ws = model.workspace(bs, with_batch=True)
        grads = model.new_gradients()
        evaluator = Evaluator(model, chunk=self.eval_chunk, max_rows=max(len(x_val), n), engine=self.engine)
        # Inputs that are mostly one value per column (MNIST's blank pixels) go sparse, once per
        # run: the compiled steps and the validation chunks then skip those entries.
        # The sparse kernels run on one thread: the steps use them when their BLAS would too.
        blas = _Blas()
        small = _step_macs(model, bs) < SMALL_STEP_MACS
        sparse_steps, sparse_validation = small or blas.threads() == 1, self.validations_per_epoch > 0
        sparse_train = None
        if self.sparse_inputs and evaluator.compiled and (sparse_steps or sparse_validation):
            sparse_train = sparse_rows(x_train)
        compiled = compiled_steps(self.engine, model, self.optimizer, bs, x_train, y_train,
                                  sparse_train if sparse_steps else None)
        self.engine_used = "numpy" if compiled is None else "compiled"
        self.sparse_used = compiled is not None and compiled.sparse is not None
        if sparse_validation and sparse_train is not None:
            evaluator.use_sparse(x_train, sparse_train)
            if x_val is not x_train:
                evaluator.use_sparse(x_val, sparse_rows(x_val))
        self.stop_training = False
        for cb in self.callbacks:
            cb.on_train_begin(self)
        error: DivergenceError | None = None
        try:
            # Small steps run on one BLAS thread (validation has its own workers, see Evaluator).
            # NumPy's overflow/NaN warnings are silenced: divergence is detected (loss every step,
            # weights at every validation) and reported once, as a DivergenceError.
            with blas.limit(1) if small else contextlib.nullcontext(), np.errstate(all="ignore"):
                self._epochs(x_train, y_train, x_val, y_val, ws, grads, evaluator, compiled)
        except KeyboardInterrupt:
            state.interrupted = True
        except DivergenceError as exc:
            error = exc
        finally:
            evaluator.close()
            if sparse_train is not None:  # the per-run sparse inputs go (and their memory with them)
                compiled = sparse_train = None
                memory.trim()
            for cb in self.callbacks:
                cb.on_train_end(self)
        if error is not None:
            raise error
        return state

    def _epochs(self, x_train, y_train, x_val, y_val, ws: Workspace, grads: list[np.ndarray],
                evaluator: Evaluator, compiled: CompiledSteps | None = None) -> None:
        """Epoch after epoch: a new sample order, the epoch's steps, the epoch-end callbacks."""
        state, n = self.state, len(x_train)
        while state.epoch < self.epochs and not self.stop_training:
            if state.step_in_epoch == 0 or state.perm is None:
                state.perm = self.rng.permutation(n) if self.shuffle else np.arange(n)
            if compiled is not None:
                self._compiled_epoch(compiled, state.perm, x_train, y_train, x_val, y_val, evaluator)
            else:
                self._numpy_epoch(state.perm, x_train, y_train, x_val, y_val, ws, grads, evaluator)
            if state.step_in_epoch >= self.steps_per_epoch:
                state.epoch += 1
                state.step_in_epoch = 0
                state.perm = None
                for cb in self.callbacks:
                    cb.on_epoch_end(self, state.epoch)

    def _numpy_epoch(self, perm: np.ndarray, x_train, y_train, x_val, y_val, ws: Workspace,
                     grads: list[np.ndarray], evaluator: Evaluator) -> None:
        """The rest of this epoch, a step per iteration. At batch 32 a step takes ~100
        microseconds, so lookups are hoisted."""
        model, state, bs = self.model, self.state, self.batch_size
        loss_and_gradients, optimizer_step, take = model.loss_and_gradients, self.optimizer.step, np.take
        step_hooks = [cb.on_step_end for cb in self.callbacks if _overrides(cb, "on_step_end")]
        full_x, full_y = ws.inputs, ws.labels
        validate_every = self.validate_every
        for k in range(state.step_in_epoch, self.steps_per_epoch):
            idx = perm[k * bs : (k + 1) * bs]
            m = len(idx)
            xb, yb = (full_x, full_y) if m == bs else (full_x[:m], full_y[:m])
            take(x_train, idx, axis=0, out=xb, mode="clip")  # "clip": written straight into xb
            take(y_train, idx, out=yb, mode="clip")
            loss = loss_and_gradients(xb, yb, ws, grads)
            if not math.isfinite(loss):
                state.diverged = True
                raise DivergenceError(
                    f"training diverged at step {state.step + 1}: loss is {loss}"
                    f" (last finite loss {state.last_finite_loss}); lower the learning rate",
                    step=state.step + 1, last_finite_loss=state.last_finite_loss)
            optimizer_step(grads)
            step = state.step = state.step + 1
            state.step_in_epoch = k + 1
            state.last_finite_loss = loss
            for hook in step_hooks:
                hook(self, step, loss)
            if validate_every and step % validate_every == 0:
                self._validate(x_train, y_train, x_val, y_val, evaluator)
            if self.stop_training:
                break

    def _compiled_epoch(self, compiled: CompiledSteps, perm: np.ndarray, x_train, y_train, x_val, y_val,
                        evaluator: Evaluator) -> None:
        """The rest of this epoch on the compiled path: runs of steps up to each validation.

        A callback with ``on_step_end`` but no ``on_steps_end`` may look at the trainer after
        every step, so then every run is a single step.
        """
        state, every = self.state, self.validate_every
        hooked = [cb for cb in self.callbacks if _overrides(cb, "on_step_end") or _overrides(cb, "on_steps_end")]
        longest = 1 if any(not _overrides(cb, "on_steps_end") for cb in hooked) else max(1, self.segment_steps)
        while state.step_in_epoch < self.steps_per_epoch and not self.stop_training:
            k = state.step_in_epoch
            n = min(self.steps_per_epoch - k, longest)
            if every:
                n = min(n, every - state.step % every)
            applied = compiled.run(perm, k, n)
            if applied:
                first = state.step + 1
                state.step += applied
                state.step_in_epoch = k + applied
                state.last_finite_loss = float(compiled.losses[applied - 1])
                losses = compiled.losses[:applied]
                for cb in hooked:
                    cb.on_steps_end(self, first, losses)
            if applied < n:
                state.diverged = True
                raise DivergenceError(
                    f"training diverged at step {state.step + 1}: loss is {compiled.losses[applied]}"
                    f" (last finite loss {state.last_finite_loss}); lower the learning rate",
                    step=state.step + 1, last_finite_loss=state.last_finite_loss)
            if every and state.step % every == 0:
                self._validate(x_train, y_train, x_val, y_val, evaluator)

    def _validate(self, x_train, y_train, x_val, y_val, evaluator: Evaluator) -> None:
        state = self.state
        for i, p in enumerate(self.model.parameters()):
            if not np.isfinite(p).all():
                state.diverged = True
                raise DivergenceError(
                    f"training diverged at step {state.step}: {self.model.parameter_names()[i]} has"
                    f" non-finite values (last finite loss {state.last_finite_loss}); lower the learning rate",
                    step=state.step, last_finite_loss=state.last_finite_loss)
        (val_loss, val_acc), (train_loss, train_acc) = evaluator.evaluate_many([(x_val, y_val), (x_train, y_train)])
        logs = {"step": state.step, "epoch": state.step / self.steps_per_epoch, "val_loss": val_loss,
                "val_accuracy": val_acc, "train_loss": train_loss, "train_accuracy": train_acc}
        for cb in self.callbacks:
            cb.on_validation_end(self, logs)

    # ------------------------------------------------------------------- resume
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: weights, optimizer, RNG, position, callbacks."""
        s = self.state
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": copy.deepcopy(self.rng.bit_generator.state),
            "epoch": s.epoch,
            "step": s.step,
            "step_in_epoch": s.step_in_epoch,
            "perm": None if s.perm is None else s.perm.copy(),
            "last_finite_loss": s.last_finite_loss,
            "callbacks": {type(cb).__name__: cb.state_dict() for cb in self.callbacks},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = state["rng"]
        self.state = TrainState(
            epoch=int(state["epoch"]), step=int(state["step"]), step_in_epoch=int(state["step_in_epoch"]),
            perm=None if state["perm"] is None else np.asarray(state["perm"]),
            last_finite_loss=state["last_finite_loss"],
        )
        saved = state["callbacks"]
        for cb in self.callbacks:
            name = type(cb).__name__
            if name in saved:
                cb.load_state_dict(saved[name])
