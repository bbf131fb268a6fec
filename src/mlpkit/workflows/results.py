"""A run's results on disk: the history, the final metrics and the validation predictions
(the run's weights are written by :mod:`mlpkit.runs.weights`) and its model file. Written by
:func:`mlpkit.workflows.experiment.run_experiment` inside its one committed unit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mlpkit.core.errors import DivergenceError
from mlpkit.core.fileio import atomic_save_npz, atomic_write_json
from mlpkit.data.prepare import PreparedData
from mlpkit.nn.mlp import MLP
from mlpkit.runs import schema
from mlpkit.runs.checkpoints import last_good_checkpoint
from mlpkit.train.callbacks import EarlyStopping, History
from mlpkit.train.trainer import Trainer

__all__ = ["MISCLASSIFIED_KEPT", "final_metrics", "save_predictions", "save_run_model", "write_history"]

#: Misclassified validation images kept in predictions.npz (the most confident mistakes first).
MISCLASSIFIED_KEPT = 100


def write_history(run_dir: Path, history: History, error: DivergenceError | None) -> None:
    """history.json; after a divergence also diverged.json, then the DivergenceError naming them."""
    atomic_write_json(run_dir / schema.HISTORY, history.to_dict(), indent=None)
    if error is None:
        return
    good = last_good_checkpoint(run_dir)  # finite weights: not merely the newest file
    last_good = str(good.relative_to(run_dir)) if good else None
    atomic_write_json(
        run_dir / schema.DIVERGED,
        {
            "step": error.step,
            "last_finite_loss": error.last_finite_loss,
            "last_checkpoint": last_good,
            "message": str(error),
        },
    )
    where = (
        f"; the history and the last good checkpoint ({last_good}) are in {run_dir}"
        if last_good
        else f"; the history is in {run_dir}"
    )
    raise DivergenceError(f"{error}{where}", step=error.step, last_finite_loss=error.last_finite_loss) from None


def final_metrics(
    model: MLP, data: PreparedData, history: History, stopper: EarlyStopping | None, trainer: Trainer, wall: float
) -> dict[str, Any]:
    train_loss, train_acc = model.evaluate(data.x_train, data.y_train)
    val_loss, val_acc = model.evaluate(data.x_val, data.y_val)
    val = history.validation
    best = int(np.argmin(val["val_loss"])) if val["val_loss"] else None
    smoothed = history.train_loss[-trainer.steps_per_epoch :] if history.num_steps else np.array([np.nan])
    return {
        "train_loss": train_loss,
        "train_accuracy": train_acc,
        "val_loss": val_loss,
        "val_accuracy": val_acc,
        "num_parameters": model.num_parameters,
        "steps": trainer.state.step,
        "epochs_completed": trainer.state.step / trainer.steps_per_epoch,
        "early_stop_step": stopper.stopped_step if stopper else None,
        "best_val_loss": val["val_loss"][best] if best is not None else None,
        "best_val_loss_step": val["step"][best] if best is not None else None,
        "best_val_accuracy": max(val["val_accuracy"]) if val["val_accuracy"] else None,
        "last_epoch_mean_batch_loss": float(np.mean(smoothed)),
        "steps_per_epoch": trainer.steps_per_epoch,
        "validate_every": trainer.validate_every,
        "wall_time_s": wall,
        "normalization": {"kind": data.normalization.kind, "mean": data.mean, "std": data.std}
        if data.normalization.kind == "global"
        else {"kind": data.normalization.kind},
        "classes": list(data.classes),
        "dataset": data.dataset,
    }


def save_predictions(path: Path, model: MLP, data: PreparedData) -> None:
    """Validation labels, predictions, probabilities and the most confident mistakes' images."""
    proba = model.predict_proba(data.x_val, prepared=True).astype(np.float32)
    pred = proba.argmax(axis=1)
    wrong = np.flatnonzero(pred != data.y_val)
    order = wrong[np.argsort(-proba[wrong, pred[wrong]])][:MISCLASSIFIED_KEPT]
    arrays = {
        "y_true": data.y_val.astype(np.int64),
        "y_pred": pred.astype(np.int64),
        "proba": proba,
        "misclassified_index": order.astype(np.int64),
    }
    if len(data.image_shape) == 2:  # pictures only of inputs that are pictures
        arrays["misclassified_images"] = data.val_images(order)
    atomic_save_npz(path, arrays, compress=True)


def save_run_model(path: Path, model: MLP, data: PreparedData, config: dict[str, Any]) -> Path:
    """The run's model file (`mlpkit.runs.model_file`): what ``mlpkit predict`` reads.

    It holds the training split's normalization, the data set's classes and input shape, the
    run's ``[data]`` table (so ``evaluate`` finds the test part again) and the provenance
    digest of the run's config (``Config.to_dict``).
    """
    from mlpkit.runs.loaded_model import Provenance
    from mlpkit.runs.model_file import save_model

    return save_model(
        model,
        path,
        normalization=data.normalization,
        classes=list(data.classes),
        input_shape=data.image_shape,
        dataset=data.dataset,
        provenance=Provenance.for_config(config),
        preprocess=image_preprocess(data),
        data={k: v for k, v in config["data"].items() if v is not None},
    )


def image_preprocess(data: PreparedData) -> str:
    """How ``predict`` should read image files for a model trained on ``data``.

    MNIST's own steps for the IDX family (digits drawn like MNIST's), a plain grayscale resize
    for other pictures of uint8 pixels (an image folder), and none for the rest (table rows,
    and scikit-learn's digits, whose 0..16 values no image file has).
    """
    from mlpkit.data.idx_datasets import IDX_DATASETS

    if data.dataset in IDX_DATASETS and data.image_shape == (28, 28):
        return "mnist"
    if data.dataset != "digits" and len(data.image_shape) == 2 and data.raw_uint8:
        return "resize"
    return "none"
