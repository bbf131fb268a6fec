"""``MLPClassifier``'s epochs: the one training loop (:class:`mlpkit.train.trainer.Trainer`) on
the estimator's network, optimizer and schedule, and what it records of them.

Kept apart from the estimator's public contract (`mlpkit.adapters.sklearn`): this is how a
``fit`` or ``partial_fit`` trains, not what the estimator promises.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from mlpkit.adapters import sklearn_options as options
from mlpkit.engine.threads import limit_blas_threads
from mlpkit.optim.plateau import ReduceOnPlateau
from mlpkit.train.callbacks import EarlyStopping, History, ProgressBar
from mlpkit.train.trainer import Trainer

__all__ = ["train_epochs"]


def train_epochs(est: Any, X: np.ndarray, codes: np.ndarray, epochs: int, *, early_stopping: bool) -> None:
    """``epochs`` epochs of the one training loop on X (validated) and class indices ``codes``.

    Continues ``est``'s network, optimizer, schedule and generator; the schedule is made on
    the first call, sized on its steps per epoch. Appends to ``loss_curve_`` (and with
    ``early_stopping``, to ``validation_scores_``) and counts ``n_iter_``. ``est`` is the
    `mlpkit.adapters.sklearn.MLPClassifier` (typed ``Any``: that module imports this one).
    """
    model = est.model_
    x_val = y_val = None
    callbacks: list[Any] = []
    history = History()
    if early_stopping:
        stratify = codes if np.bincount(codes).min() >= 2 else None
        X, x_val_raw, codes, y_val = train_test_split(
            X, codes, test_size=est.validation_fraction, random_state=est._gen.integers(2**31), stratify=stratify
        )
        x_val = model.prepare_inputs(x_val_raw)
        stopper = EarlyStopping(patience=est.n_iter_no_change, min_delta=est.tol, restore_best_weights=True)
        callbacks.append(stopper)
    callbacks += [history, ProgressBar(enabled=bool(est.verbose), description="MLPClassifier")]
    x = model.prepare_inputs(X)
    batch_size = min(int(est.batch_size), len(x))
    if not est._schedule_sized:  # an epoch's steps, as the trainer counts them without drop_last
        est._schedule_spec = options.schedule_spec(est, -(-len(x) // batch_size))
        est._schedule = options.build_schedule(est._schedule_spec, est._optimizer)
        est._schedule_sized = True
    plateau = est._schedule if isinstance(est._schedule, ReduceOnPlateau) else None
    trainer = Trainer(
        model,
        est._optimizer,
        rng=est._gen,
        epochs=epochs,
        batch_size=batch_size,
        shuffle=bool(est.shuffle),
        drop_last=False,
        validations_per_epoch=1 if early_stopping else 0,
        callbacks=callbacks,
        engine=est.engine,
        options=options.step_options(est, est._schedule),
        plateau=plateau if early_stopping else None,  # partial_fit has no validation checks: the lr holds
    )
    with limit_blas_threads(est.threads):
        state = trainer.fit(x, codes, x_val, y_val)
    per_epoch = history.train_loss[: state.epoch * trainer.steps_per_epoch].reshape(state.epoch, -1)
    # an epoch's mean loss over samples: steps weighted by their batch's rows (the last may be smaller)
    rows = np.full(trainer.steps_per_epoch, trainer.batch_size, dtype=np.float64)
    rows[-1] = len(x) - trainer.batch_size * (trainer.steps_per_epoch - 1)
    est.loss_curve_ += (per_epoch @ rows / len(x)).tolist()
    est.n_iter_ += state.epoch
    if early_stopping:
        assert est.validation_scores_ is not None and stopper.best_step is not None  # one check per epoch
        scores = history.validation["val_accuracy"]
        est.validation_scores_ += scores
        # the weights kept (restore_best_weights) are those of the check with the lowest loss
        est.best_validation_score_ = float(scores[history.validation["step"].index(float(stopper.best_step))])
    else:
        est.best_loss_ = float(min(est.loss_curve_))
