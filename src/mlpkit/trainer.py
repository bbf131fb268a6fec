"""The training loop: mini-batch SGD over shuffled indices, periodic validation, callbacks.

The loop itself only computes; recording, early stopping, checkpoints and the progress bar
are callbacks. Its whole state (weights, optimizer, RNG, position in the epoch, callbacks)
can be saved and loaded, so a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .callbacks import Callback
from .errors import ConfigError, DivergenceError, InputError
from .model import MLP
from .optim import SGD


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


def _check_prepared(model: MLP, x: np.ndarray, y: np.ndarray, which: str) -> np.ndarray:
    """Clear errors for arrays that did not come from ``model.prepare_inputs``; the labels as intp."""
    if not isinstance(x, np.ndarray) or x.ndim != 2 or x.shape[1] != model.input_width:
        raise InputError(f"{which} inputs must come from model.prepare_inputs: shape (samples,"
                         f" {model.input_width}), got {np.shape(x)}")
    if len(x) == 0:
        raise InputError(f"{which} inputs are empty (0 samples)")
    if not np.issubdtype(x.dtype, np.floating) or not np.isfinite(x).all():
        raise InputError(f"{which} inputs must be finite floats (dtype {x.dtype}); see model.prepare_inputs")
    return model.check_labels(y, len(x))


class Trainer:
    """Trains an :class:`MLP` with an optimizer on prepared arrays.

    ``x_train``/``x_val`` must be prepared by ``model.prepare_inputs`` (dtype, bias column);
    labels are integer arrays. Validation runs every ``steps_per_epoch // validations_per_epoch``
    steps and records validation loss/accuracy and training loss/accuracy over the whole
    training set, each computed as a few large matrix products.
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
        eval_chunk: int = 10_000,
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
        self.validate_every = max(1, self.steps_per_epoch // self.validations_per_epoch)

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
        ws = model.workspace(bs, with_batch=True)
        eval_ws = model.workspace(min(self.eval_chunk, max(len(x_val), n)))
        grads = model.new_gradients()
        self.stop_training = False
        for cb in self.callbacks:
            cb.on_train_begin(self)
        error: DivergenceError | None = None
        try:
            while state.epoch < self.epochs and not self.stop_training:
                if state.step_in_epoch == 0 or state.perm is None:
                    state.perm = self.rng.permutation(n) if self.shuffle else np.arange(n)
                perm = state.perm
                for k in range(state.step_in_epoch, self.steps_per_epoch):
                    idx = perm[k * bs : (k + 1) * bs]
                    m = len(idx)
                    xb, yb = ws.inputs[:m], ws.labels[:m]
                    np.take(x_train, idx, axis=0, out=xb)
                    np.take(y_train, idx, out=yb)
                    loss = model.loss_and_gradients(xb, yb, ws, grads)
                    if not math.isfinite(loss):
                        state.diverged = True
                        raise DivergenceError(
                            f"training diverged at step {state.step + 1}: loss is {loss}"
                            f" (last finite loss {state.last_finite_loss}); lower the learning rate",
                            step=state.step + 1, last_finite_loss=state.last_finite_loss)
                    self.optimizer.step(grads)
                    state.step += 1
                    state.step_in_epoch = k + 1
                    state.last_finite_loss = loss
                    for cb in self.callbacks:
                        cb.on_step_end(self, state.step, loss)
                    if state.step % self.validate_every == 0:
                        self._validate(x_train, y_train, x_val, y_val, eval_ws)
                    if self.stop_training:
                        break
                if state.step_in_epoch >= self.steps_per_epoch:
                    state.epoch += 1
                    state.step_in_epoch = 0
                    state.perm = None
                    for cb in self.callbacks:
                        cb.on_epoch_end(self, state.epoch)
        except KeyboardInterrupt:
            state.interrupted = True
        except DivergenceError as exc:
            error = exc
        finally:
            for cb in self.callbacks:
                cb.on_train_end(self)
        if error is not None:
            raise error
        return state

    def _validate(self, x_train, y_train, x_val, y_val, eval_ws) -> None:
        state = self.state
        for i, p in enumerate(self.model.parameters()):
            if not np.isfinite(p).all():
                state.diverged = True
                raise DivergenceError(
                    f"training diverged at step {state.step}: {self.model.parameter_names()[i]} has"
                    f" non-finite values (last finite loss {state.last_finite_loss}); lower the learning rate",
                    step=state.step, last_finite_loss=state.last_finite_loss)
        val_loss, val_acc = self.model.evaluate(x_val, y_val, eval_ws)
        train_loss, train_acc = self.model.evaluate(x_train, y_train, eval_ws)
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
