"""The training loop: mini-batch SGD over shuffled indices, periodic validation, callbacks.

The loop itself only counts steps; the engine (mlpkit.engine.planner) chooses how the steps
and validations run, and recording, early stopping, checkpoints and the progress bar are
callbacks. Its whole state (weights, optimizer, RNG, position in the epoch, callbacks) can be
saved and loaded, so a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlpkit.core.errors import ConfigError, DivergenceError, InputError
from mlpkit.engine.evaluator import EVAL_CHUNK
from mlpkit.engine.planner import SEGMENT_STEPS, EnginePlan, check_engine, plan_engine
from mlpkit.nn.mlp import MLP
from mlpkit.optim.sgd import SGD
from mlpkit.train.callbacks import Callback
from mlpkit.train.interrupt import InterruptRequest, deferred_interrupts


@dataclass
class TrainState:
    """Where training stands; enough (with weights and optimizer) to resume exactly."""

    epoch: int = 0  # completed epochs
    step: int = 0  # completed gradient steps
    step_in_epoch: int = 0
    perm: np.ndarray | None = None  # this epoch's order of training indices
    interrupted: bool = False  # stopped by Ctrl-C, between two steps (resumable)
    diverged: bool = False
    aborted: bool = False  # stopped by an exception mid-step (e.g. a second Ctrl-C): never saved
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


def _overrides(cb: Callback, hook: str) -> bool:
    """Does ``cb`` do something in ``hook`` (a method of its class, or one set on the instance)?"""
    return getattr(type(cb), hook) is not getattr(Callback, hook) or hook in vars(cb)


class Trainer:
    """Trains an :class:`MLP` with an optimizer on prepared arrays.

    Validation runs every ``steps_per_epoch // validations_per_epoch`` steps and records
    validation loss/accuracy and training loss/accuracy over the whole training set, each
    computed as a few large matrix products (:class:`mlpkit.engine.evaluator.Evaluator`).
    How steps run (compiled or NumPy, sparse inputs, BLAS threads) is the engine's choice
    (:func:`mlpkit.engine.planner.plan_engine`); the results do not depend on how the steps
    are cut into runs. A run allocates its buffers once; a step allocates no arrays.

    Parameters
    ----------
    model : MLP
        The model to train, in place; its weights must be initialized.
    optimizer : SGD
        Holds ``model.parameters()``.
    rng : numpy.random.Generator
        The one generator the loop draws from (each epoch's sample order).
    epochs : int
        Passes over the training set, >= 1.
    batch_size : int
        Rows per step, >= 1 and at most the training set.
    shuffle : bool, default True
        A new random order every epoch (else the stored order).
    drop_last : bool, default True
        Drop the epoch's last, incomplete batch.
    validations_per_epoch : int, default 5
        Validation checks per epoch (0: none).
    callbacks : sequence of Callback
        Called in this order at each hook.
    eval_chunk : int, default EVAL_CHUNK
        Rows per evaluation chunk.
    engine : {"auto", "compiled", "numpy"}, default "auto"
        See :mod:`mlpkit.engine.planner`.

    Raises
    ------
    ConfigError
        A bad epoch count, batch size or engine name.

    Attributes
    ----------
    sparse_inputs : bool
        Let the compiled engine use sparse inputs where they pay (default True).
    segment_steps : int
        The longest run of steps per engine call (the engine may choose fewer).
    engine_used, sparse_used
        What the last ``fit`` ran on: ``"compiled"`` or ``"numpy"``; whether its steps read
        sparse inputs.
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
        self.segment_steps = SEGMENT_STEPS
        self.sparse_inputs = True
        self.engine_used: str | None = None
        self.sparse_used = False
        self.state = TrainState()
        self.stop_training = False
        self.steps_per_epoch = 0
        self.total_steps = 0
        self.validate_every = 0

    # ------------------------------------------------------------------ geometry
    def _schedule(self, n_train: int) -> None:
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

        Parameters
        ----------
        x_train, x_val : ndarray
            Inputs prepared by ``model.prepare_inputs`` (dtype, bias column).
        y_train, y_val : ndarray
            Integer labels.

        Returns
        -------
        TrainState
            Where training stands (``self.state``); ``interrupted`` after Ctrl-C.

        Raises
        ------
        InputError
            Arrays that did not come from ``model.prepare_inputs``, or bad labels.
        DivergenceError
            A non-finite loss or weight; raised after the callbacks' ``on_train_end`` ran, so
            the history and the last good checkpoint are on disk.

        Notes
        -----
        The first Ctrl-C (in the main thread) stops cleanly between two runs of steps and
        keeps everything done so far: the state can be saved and resumed exactly. A second
        Ctrl-C raises KeyboardInterrupt at once; the state is then marked ``aborted``.
        """
        model, state = self.model, self.state
        y_train = _check_prepared(model, x_train, y_train, "training")
        y_val = _check_prepared(model, x_val, y_val, "validation")
        self._schedule(len(x_train))
        plan = plan_engine(model, self.optimizer, batch_size=self.batch_size, x_train=x_train, y_train=y_train,
                           x_val=x_val, engine=self.engine, sparse_inputs=self.sparse_inputs,
                           validation=self.validations_per_epoch > 0, eval_chunk=self.eval_chunk)
        self.engine_used, self.sparse_used = plan.engine, plan.sparse_steps
        self.stop_training = False
        state.interrupted = state.aborted = False
        error: DivergenceError | None = None
        with deferred_interrupts() as interrupt:
            try:
                for cb in self.callbacks:
                    cb.on_train_begin(self)
                with plan.running():
                    self._run(plan, interrupt, x_train, y_train, x_val, y_val)
            except DivergenceError as exc:
                error = exc
            except BaseException as exc:  # a second Ctrl-C, or a failing callback: the state may be torn
                state.aborted = True
                state.interrupted = isinstance(exc, KeyboardInterrupt)
                raise
            finally:
                plan.close()
                for cb in self.callbacks:
                    cb.on_train_end(self)
        if error is not None:
            raise error
        return state

    def _stopping(self, interrupt: InterruptRequest) -> bool:
        if interrupt.requested:
            self.state.interrupted = True
            self.stop_training = True
        return self.stop_training

    def _run(self, plan: EnginePlan, interrupt: InterruptRequest, x_train: np.ndarray, y_train: np.ndarray,
             x_val: np.ndarray, y_val: np.ndarray) -> None:
        """The one loop: epochs, and in each, runs of steps that end at validations, epoch
        ends, ``segment_steps``, and after every step when a callback has only ``on_step_end``."""
        state, steps, every = self.state, plan.steps, self.validate_every
        hooked = [cb for cb in self.callbacks if _overrides(cb, "on_step_end") or _overrides(cb, "on_steps_end")]
        if any(not _overrides(cb, "on_steps_end") for cb in hooked):
            longest = 1  # such a callback may look at the trainer after every step
        else:
            longest = max(1, min(self.segment_steps, plan.segment_steps))
        n_train = len(x_train)
        while state.epoch < self.epochs and not self._stopping(interrupt):
            if state.step_in_epoch == 0 or state.perm is None:
                state.perm = self.rng.permutation(n_train) if self.shuffle else np.arange(n_train)
            while state.step_in_epoch < self.steps_per_epoch and not self._stopping(interrupt):
                k = state.step_in_epoch
                n = min(self.steps_per_epoch - k, longest)
                if every:
                    n = min(n, every - state.step % every)
                applied = steps.run(state.perm, k, n)
                if applied:
                    first = state.step + 1
                    state.step += applied
                    state.step_in_epoch = k + applied
                    losses = steps.losses[:applied]
                    state.last_finite_loss = float(losses[-1])
                    for cb in hooked:
                        cb.on_steps_end(self, first, losses)
                if applied < n:
                    raise self._divergence(state.step + 1, f"loss is {float(steps.losses[applied])}")
                if every and state.step % every == 0:
                    self._validate(plan, x_train, y_train, x_val, y_val)
            if state.step_in_epoch >= self.steps_per_epoch:
                state.epoch += 1
                state.step_in_epoch = 0
                state.perm = None
                for cb in self.callbacks:
                    cb.on_epoch_end(self, state.epoch)

    def _divergence(self, step: int, what: str) -> DivergenceError:
        state = self.state
        state.diverged = True
        return DivergenceError(
            f"training diverged at step {step}: {what} (last finite loss {state.last_finite_loss});"
            " lower the learning rate", step=step, last_finite_loss=state.last_finite_loss)

    def _validate(self, plan: EnginePlan, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
                  y_val: np.ndarray) -> None:
        state = self.state
        for i, p in enumerate(self.model.parameters()):
            if not np.isfinite(p).all():
                raise self._divergence(state.step, f"{self.model.parameter_names()[i]} has non-finite values")
        evaluate_many = plan.evaluator.evaluate_many
        (val_loss, val_acc), (train_loss, train_acc) = evaluate_many([(x_val, y_val), (x_train, y_train)])
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
