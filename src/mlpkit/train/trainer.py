"""The training loop: mini-batch SGD over shuffled indices, periodic validation, callbacks.

The loop itself only counts steps; the engine (mlpkit.engine.planner) chooses how the steps
and validations run, and recording, early stopping, checkpoints and the progress bar are
callbacks. Its whole state (weights, optimizer, RNG, position in the epoch, callbacks) can be
saved and loaded, so a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mlpkit.core.errors import CheckpointError, ConfigError, DivergenceError, InputError
from mlpkit.engine.evaluator import EVAL_CHUNK
from mlpkit.engine.planner import SEGMENT_STEPS, EnginePlan, plan_engine
from mlpkit.engine.selection import check_engine
from mlpkit.engine.step_options import StepOptions
from mlpkit.nn.mlp import MLP
from mlpkit.optim.optimizer import Optimizer
from mlpkit.optim.plateau import ReduceOnPlateau
from mlpkit.train.augment_feed import AugmentFeed
from mlpkit.train.callbacks import Callback
from mlpkit.train.interrupt import InterruptRequest, deferred_interrupts
from mlpkit.train.loop_checks import check_count, check_prepared, divergence_error, epoch_steps, overrides
from mlpkit.train.state import TrainState, load_training_state, training_state_dict
from mlpkit.train.state_check import RunGeometry

#: A training loss above EXPLODED_FACTOR x the run's first loss, and above EXPLODED_MIN, is a
#: divergence (cross-entropy that large means logits apart by hundreds: the learning rate is
#: far too high), reported as for a NaN. Checked once per run of steps, not per step.
EXPLODED_FACTOR = 1e4
EXPLODED_MIN = 1e3


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
    optimizer : Optimizer
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
    options : StepOptions, optional
        Dropout, label smoothing, gradient clipping, a per-step learning-rate schedule and a
        max-norm constraint (`mlpkit.engine.step_options`); default: none of them.
    plateau : ReduceOnPlateau, optional
        A schedule stepped with the validation loss at every validation check.
    augment : AugmentFeed, optional
        Gives each epoch's training inputs (`mlpkit.train.augment_feed`); ``x_train`` given to
        ``fit`` stays the unaugmented set (training metrics are measured on it).

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
    engine_used, sparse_used, fallback_reason
        What the last ``fit`` ran on: ``"compiled"`` or ``"numpy"``; whether its steps read
        sparse inputs; why it did not run compiled (engine "auto"; None otherwise).
    """

    def __init__(
        self,
        model: MLP,
        optimizer: Optimizer,
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
        options: StepOptions | None = None,
        plateau: ReduceOnPlateau | None = None,
        augment: AugmentFeed | None = None,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.rng = rng
        self.epochs = check_count("epochs", epochs, 1)
        self.batch_size = check_count("batch_size", batch_size, 1)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.validations_per_epoch = check_count("validations_per_epoch", validations_per_epoch, 0)
        self.callbacks = list(callbacks)
        self.eval_chunk = check_count("eval_chunk", eval_chunk, 1)
        self.engine = check_engine(engine)
        self.options, self.plateau, self.augment = options or StepOptions(), plateau, augment
        self.schedules = [sch for sch in (self.options.schedule, plateau) if sch is not None]
        self.fallback_reason: str | None = None
        self.segment_steps = SEGMENT_STEPS
        self.sparse_inputs = True
        self.engine_used: str | None = None
        self.sparse_used = False
        self.state = TrainState()
        self.stop_training = False
        self.steps_per_epoch = 0
        self.total_steps = 0
        self.validate_every = 0
        self._loaded_geometry: RunGeometry | None = None  # what load_state_dict checked the state against

    # ------------------------------------------------------------------ geometry
    def _schedule(self, n_train: int, validation: bool) -> None:
        if self.batch_size > n_train:
            raise ConfigError(f"batch_size {self.batch_size} is larger than the training set ({n_train} samples)")
        self.steps_per_epoch = epoch_steps(n_train, self.batch_size, self.drop_last)
        self.total_steps = self.steps_per_epoch * self.epochs
        # no validation data, or validations_per_epoch = 0: no validation at all
        vpe = self.validations_per_epoch if validation else 0
        self.validate_every = max(1, self.steps_per_epoch // vpe) if vpe > 0 else 0

    def geometry(self, n_train: int, *, validation: bool = True) -> RunGeometry:
        """What a saved state must agree with to be resumed by a fit on ``n_train`` samples (with
        validation data or not); for `load_state_dict`. Also sets ``steps_per_epoch`` and the like.

        Raises
        ------
        ConfigError
            If ``batch_size`` is larger than ``n_train``.
        """
        self._schedule(n_train, validation)
        shapes = {name: p.shape for name, p in zip(self.model.parameter_names(), self.model.parameters())}
        return RunGeometry(
            n_train=n_train,
            steps_per_epoch=self.steps_per_epoch,
            validate_every=self.validate_every,
            parameter_shapes=shapes,
            dtype=self.model.dtype,
            optimizer_spec=self.optimizer.state_spec() if hasattr(self.optimizer, "state_spec") else None,
            schedules=tuple(sch.name for sch in self.schedules),
        )

    def _check_start(self, n_train: int) -> None:
        """What would make this fit meaningless or unsafe, refused before any work."""
        if not any(w.any() for w in self.model.weights):
            raise ConfigError(
                "the model's weights are all zero: call model.init_weights(rng) (or load weights)"
                " before training; from zero every hidden unit learns the same thing"
            )
        needs = [type(cb).__name__ for cb in self.callbacks if getattr(cb, "needs_validation", False)]
        if needs and not self.validate_every:
            raise ConfigError(
                f"{needs[0]} watches validation checks and this fit has none: pass x_val and y_val"
                " to fit (with validations_per_epoch >= 1), or leave it out"
            )
        loaded, self._loaded_geometry = self._loaded_geometry, None
        if loaded is not None and (loaded.n_train, loaded.steps_per_epoch, loaded.validate_every) != (
            n_train,
            self.steps_per_epoch,
            self.validate_every,
        ):
            raise CheckpointError(
                f"the loaded training state was checked for a training set of {loaded.n_train}"
                f" ({loaded.steps_per_epoch} steps an epoch); this fit has {n_train}"
                f" ({self.steps_per_epoch} steps an epoch)"
            )

    # ---------------------------------------------------------------------- fit
    def fit(
        self, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray | None = None, y_val: np.ndarray | None = None
    ) -> TrainState:
        """Train until ``epochs`` are done, early stopping fires, Ctrl-C, or divergence.

        Parameters
        ----------
        x_train, y_train : ndarray
            Inputs prepared by ``model.prepare_inputs`` (dtype, bias column), integer labels.
        x_val, y_val : ndarray, optional
            The validation set, prepared alike; without it there are no validation checks
            (and callbacks that watch them, such as EarlyStopping, are refused).

        Returns
        -------
        TrainState
            Where training stands (``self.state``); ``interrupted`` after Ctrl-C.

        Raises
        ------
        InputError
            Arrays that did not come from ``model.prepare_inputs``, or bad labels.
        ConfigError
            A model whose weights were never initialized, a batch larger than the training
            set, or EarlyStopping without validation checks.
        CheckpointError
            A state loaded (``load_state_dict``) for another training set size.
        DivergenceError
            A non-finite loss or weight, or a loss above ``EXPLODED_FACTOR`` x the first loss
            (and above ``EXPLODED_MIN``); raised after the callbacks' ``on_train_end`` ran, so
            the history and the last good checkpoint are on disk.

        Notes
        -----
        The first Ctrl-C (in the main thread) stops cleanly between two runs of steps and
        keeps everything done so far: the state can be saved and resumed exactly. A second
        Ctrl-C raises KeyboardInterrupt at once; the state is then marked ``aborted``.
        """
        model, state = self.model, self.state
        y_train = check_prepared(model, x_train, y_train, "training")
        if (x_val is None) != (y_val is None):
            raise InputError("pass both x_val and y_val, or neither (no validation)")
        if x_val is not None and y_val is not None:
            y_val = check_prepared(model, x_val, y_val, "validation")
        self._schedule(len(x_train), validation=x_val is not None)
        self._check_start(len(x_train))
        plan = plan_engine(
            model,
            self.optimizer,
            batch_size=self.batch_size,
            x_train=x_train,
            y_train=y_train,
            x_val=x_val,
            engine=self.engine,
            sparse_inputs=self.sparse_inputs,
            sparse_training=self.augment is None,  # augmented inputs change every epoch; validation reads x_train
            sparse_feed=self.augment is not None,  # ... with the sparse forms the feed makes
            validation=self.validate_every > 0,
            eval_chunk=self.eval_chunk,
            options=self.options,
            rng=self.rng,
        )
        self.engine_used, self.sparse_used, self.fallback_reason = plan.engine, plan.sparse_steps, plan.fallback_reason
        self._sparse_feed = self.augment is not None and plan.sparse_steps and self.augment.read_sparse()
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

    def _run(
        self,
        plan: EnginePlan,
        interrupt: InterruptRequest,
        x_train: np.ndarray,
        y_train: np.ndarray,
        x_val: np.ndarray | None,
        y_val: np.ndarray | None,
    ) -> None:
        """The one loop: epochs, and in each, runs of steps that end at validations, epoch
        ends, ``segment_steps``, and after every step when a callback has only ``on_step_end``."""
        state, steps, every = self.state, plan.steps, self.validate_every
        hooked = [cb for cb in self.callbacks if overrides(cb, "on_step_end") or overrides(cb, "on_steps_end")]
        if any(not overrides(cb, "on_steps_end") for cb in hooked):
            longest = 1  # such a callback may look at the trainer after every step
        else:
            longest = max(1, min(self.segment_steps, plan.segment_steps))
        n_train = len(x_train)
        while state.epoch < self.epochs and not self._stopping(interrupt):
            if state.step_in_epoch == 0 or state.perm is None:
                state.perm = self.rng.permutation(n_train) if self.shuffle else np.arange(n_train)
            if self.augment is not None:
                x_epoch = self.augment.get(state.epoch)
                steps.use_inputs(x_epoch, self.augment.sparse_form(state.epoch) if self._sparse_feed else None)
            while state.step_in_epoch < self.steps_per_epoch and not self._stopping(interrupt):
                first_in_epoch = state.step_in_epoch
                n = min(self.steps_per_epoch - first_in_epoch, longest)
                if every:
                    n = min(n, every - state.step % every)
                applied = steps.run(state.perm, first_in_epoch, n)
                what = f"loss is {float(steps.losses[applied])}" if applied < n else ""
                if applied:
                    if state.first_loss is None:
                        state.first_loss = float(steps.losses[0])
                    limit = max(EXPLODED_MIN, EXPLODED_FACTOR * state.first_loss)
                    if steps.losses[:applied].max() > limit:  # once per run: no per-step cost
                        bad = int(np.argmax(steps.losses[:applied] > limit))
                        what = (
                            f"loss {float(steps.losses[bad]):.4g} exploded (above {EXPLODED_FACTOR:.0e} x the"
                            f" first loss {state.first_loss:.4g})"
                        )
                        applied = bad  # report the run as it was before that step
                if applied:
                    first = state.step + 1
                    state.step += applied
                    state.step_in_epoch = first_in_epoch + applied
                    losses = steps.losses[:applied]
                    state.last_finite_loss = float(losses[-1])
                    for cb in hooked:
                        cb.on_steps_end(self, first, losses)
                if what:
                    raise self._divergence(state.step + 1, what)
                if every and state.step % every == 0:
                    self._validate(plan, x_train, y_train, x_val, y_val)
            if state.step_in_epoch >= self.steps_per_epoch:
                state.epoch += 1
                state.step_in_epoch = 0
                state.perm = None
                for cb in self.callbacks:
                    cb.on_epoch_end(self, state.epoch)

    def _divergence(self, step: int, what: str) -> DivergenceError:
        self.state.diverged = True
        return divergence_error(step, what, self.state.last_finite_loss)

    def _validate(
        self,
        plan: EnginePlan,
        x_train: np.ndarray,
        y_train: np.ndarray,
        x_val: np.ndarray | None,
        y_val: np.ndarray | None,
    ) -> None:
        state = self.state
        assert x_val is not None and y_val is not None  # validate_every is 0 without them
        for i, p in enumerate(self.model.parameters()):
            if not np.isfinite(p).all():
                raise self._divergence(state.step, f"{self.model.parameter_names()[i]} has non-finite values")
        evaluate_many = plan.evaluator.evaluate_many
        (val_loss, val_acc), (train_loss, train_acc) = evaluate_many([(x_val, y_val), (x_train, y_train)])
        logs = {
            "step": state.step,
            "epoch": state.step / self.steps_per_epoch,
            "val_loss": val_loss,
            "val_accuracy": val_acc,
            "train_loss": train_loss,
            "train_accuracy": train_acc,
        }
        if self.plateau is not None:  # before the callbacks: a checkpoint holds the stepped schedule
            self.plateau.step(val_loss)
        for cb in self.callbacks:
            cb.on_validation_end(self, logs)

    # ------------------------------------------------------------------- resume
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: weights, optimizer, RNG, position, callbacks."""
        return training_state_dict(self.model, self.optimizer, self.rng, self.state, self.callbacks, self.schedules)

    def load_state_dict(self, state: dict[str, Any], geometry: RunGeometry, *, source: str = "") -> None:
        """Continue from ``state`` (a `state_dict` read back), checked before any of it is used.

        Parameters
        ----------
        state : dict
            The saved state, e.g. from `mlpkit.train.checkpoint.load_checkpoint`.
        geometry : RunGeometry
            ``self.geometry(n_train)`` for the fit that follows (``fit`` refuses another size).
        source : str
            Names the state in messages (a checkpoint file).

        Raises
        ------
        CheckpointError
            If the state does not fit ``geometry`` (see `mlpkit.train.state_check`); nothing
            was loaded then.
        ConfigError
            If the state is further than ``epochs`` allow: more epochs are needed to resume it.
        """
        self.state = load_training_state(
            self.model,
            self.optimizer,
            self.rng,
            self.callbacks,
            state,
            geometry,
            epochs=self.epochs,
            source=source,
            schedules=self.schedules,
        )
        self._loaded_geometry = geometry
