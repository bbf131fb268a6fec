"""One experiment end to end: config -> data -> model -> training -> run folder.

Used by ``mlpkit train`` and ``mlpkit reproduce``; the pieces underneath stay usable alone.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlpkit.data import mnist as data_mod
from mlpkit.train.callbacks import Checkpointer, EarlyStopping, History, ProgressBar
from mlpkit.train.checkpoint import load_checkpoint
from mlpkit.runs.config import Config, load_config, to_toml
from mlpkit.core.errors import CheckpointError, ConfigError, DivergenceError, MlpkitError
from mlpkit.core.fileio import atomic_save_npz, atomic_write_json, atomic_write_text
from mlpkit.nn.mlp import MLP
from mlpkit.optim.sgd import SGD
from mlpkit.report.plots import run_figures
from mlpkit.runs.folder import environment_info, save_weights
from mlpkit.train.trainer import Trainer

MISCLASSIFIED_KEPT = 100


@dataclass
class PreparedData:
    """Normalized, bias-augmented arrays ready for the trainer, plus what made them."""

    split_name: str
    mean: float
    std: float
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray

    def val_images(self, rows: np.ndarray) -> np.ndarray:
        """uint8 (len(rows), 784) pixels of those validation images, for galleries of mistakes.

        Undone from ``x_val`` rather than kept (7.5 MiB less through training): a pixel p was
        stored as (p - mean) / std, rounded to at worst float32 (relative error 6e-8, so
        under 2e-5 of a pixel step after scaling back); rounding recovers p exactly.
        """
        pixels = self.x_val[rows, :784].astype(np.float64) * self.std + self.mean
        return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def prepare_data(cfg: Config, *, data_dir: str | Path | None = None, model: MLP | None = None) -> PreparedData:
    """Load MNIST, split, normalize with the training set's statistics, add the bias column."""
    mnist = data_mod.load_mnist(data_dir)
    split = data_mod.make_split(mnist, cfg.data.split, n_train=cfg.data.n_train, n_val=cfg.data.n_val)
    norm = data_mod.Normalizer.fit(split.x_train)
    model = model or build_model(cfg)

    def prepared(images: np.ndarray) -> np.ndarray:
        """What model.prepare_inputs makes of the normalized images, without a second copy."""
        x = norm.apply(images, dtype=model.dtype, bias_column=model.bias == "input_column")
        assert x.shape[1] == model.input_width
        return x

    return PreparedData(
        split_name=split.name, mean=norm.mean, std=norm.std,
        x_train=prepared(split.x_train),
        y_train=np.asarray(split.y_train, dtype=np.intp),
        x_val=prepared(split.x_val),
        y_val=np.asarray(split.y_val, dtype=np.intp),
    )


def data_key(cfg: Config) -> tuple:
    """Configs with equal keys can share one PreparedData."""
    return (cfg.data.split, cfg.data.n_train, cfg.data.n_val, cfg.train.dtype, cfg.model.bias)


def build_model(cfg: Config) -> MLP:
    return MLP(cfg.model.hidden, activation=cfg.model.activation, bias=cfg.model.bias, dtype=cfg.train.dtype)


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict[str, Any]
    history: History
    interrupted: bool


def _thread_limit(threads: int | None):
    if not threads:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads)


def latest_checkpoint(run_dir: Path) -> tuple[dict[str, Any], Path, list[str]]:
    """The newest readable checkpoint; a corrupt newer one is skipped with a warning.

    A skipped file is renamed ``*.corrupt`` (kept for inspection, never picked again and never
    counted among the newest checkpoints that are kept).
    """
    warnings: list[str] = []
    candidates = sorted((run_dir / "checkpoints").glob("step-*.npz"), reverse=True)
    if not candidates:
        raise CheckpointError(f"{run_dir} has no checkpoints to resume from")
    for path in candidates:
        try:
            return load_checkpoint(path), path, warnings
        except CheckpointError as exc:
            path.replace(path.with_name(path.name + ".corrupt"))
            warnings.append(f"warning: skipping unreadable checkpoint (renamed to {path.name}.corrupt): {exc}")
    raise CheckpointError(f"every checkpoint in {run_dir / 'checkpoints'} is unreadable: " + "; ".join(warnings))


def _is_temporary(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith(".tmp")


def _remove_stale_temporaries(run_dir: Path) -> None:
    """Temporary files of atomic writes that a killed process left behind (never final names)."""
    for folder in (run_dir, run_dir / "checkpoints", run_dir / "figures"):
        for tmp in folder.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)


def run_experiment(
    cfg: Config,
    run_dir: str | Path,
    *,
    data_dir: str | Path | None = None,
    data: PreparedData | None = None,
    progress: bool | None = None,
    resume: bool = False,
    log=print,
) -> RunResult:
    """Train ``cfg`` and write its run folder (see :mod:`mlpkit.runs.folder`).

    With ``resume=True`` the run continues from the newest valid checkpoint in ``run_dir``.
    Ctrl-C stops cleanly: the run folder is written with what was done and can be resumed.
    """
    run_dir = Path(run_dir)
    if not resume and run_dir.exists() and any(not _is_temporary(p) for p in run_dir.iterdir()):
        raise ConfigError(f"output folder {run_dir} already exists and is not empty; choose another --out")
    model = build_model(cfg)
    t = cfg.train
    owned = data is None
    with _thread_limit(t.threads):
        if data is None:
            data = prepare_data(cfg, data_dir=data_dir, model=model)
        if t.batch_size > len(data.x_train):
            raise ConfigError(f"train.batch_size {t.batch_size} is larger than the training set ({len(data.x_train)} samples)")
        rng = np.random.default_rng(cfg.seed)
        model.init_weights(rng, cfg.model.init)
        optimizer = SGD(model.parameters(), lr=t.learning_rate, momentum=t.momentum)
        history = History()
        stopper = EarlyStopping(patience=t.early_stopping_patience, min_delta=t.early_stopping_min_delta,
                                restore_best_weights=t.restore_best_weights) if t.early_stopping_patience else None
        callbacks = [history] + ([stopper] if stopper else [])
        checkpointer = Checkpointer(run_dir / "checkpoints", every=t.checkpoint_every)
        callbacks += [checkpointer, ProgressBar(enabled=progress, description=cfg.name)]
        trainer = Trainer(model, optimizer, rng=rng, epochs=t.epochs, batch_size=t.batch_size,
                          shuffle=cfg.data.shuffle, drop_last=t.drop_last,
                          validations_per_epoch=t.validations_per_epoch, callbacks=callbacks, engine=t.engine)
        trainer.sparse_inputs = t.sparse_inputs
        elapsed_before = 0.0
        if resume and not any((run_dir / "checkpoints").glob("step-*.npz")):
            # stopped before its first checkpoint: nothing was done that could be kept
            log(f"warning: {run_dir} has no checkpoint yet; starting it from the beginning")
            _remove_stale_temporaries(run_dir)
            atomic_write_json(run_dir / "environment.json", environment_info(seed=cfg.seed, threads=t.threads))
        elif resume:
            _remove_stale_temporaries(run_dir)
            state, path, warnings = latest_checkpoint(run_dir)
            for w in warnings:
                log(w)
            try:
                trainer.load_state_dict(state)
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                raise CheckpointError(f"checkpoint {path} does not fit the run's config: "
                                      f"{type(exc).__name__}: {exc}") from None
            elapsed_before = checkpointer.elapsed_before  # training time up to that checkpoint
            log(f"resuming {run_dir} from {path.name} (step {trainer.state.step})")
        else:
            run_dir.mkdir(parents=True, exist_ok=True)
            _remove_stale_temporaries(run_dir)
            atomic_write_text(run_dir / "config.toml", to_toml(cfg))
            atomic_write_json(run_dir / "environment.json", environment_info(seed=cfg.seed, threads=t.threads))
        start = time.perf_counter()
        error: MlpkitError | None = None
        try:
            state = trainer.fit(data.x_train, data.y_train, data.x_val, data.y_val)  # Ctrl-C: a clean stop
        except DivergenceError as exc:
            error, state = exc, trainer.state
        wall = elapsed_before + time.perf_counter() - start
        atomic_write_json(run_dir / "history.json", history.to_dict(), indent=None)
        if error is not None:
            kept = sorted((run_dir / "checkpoints").glob("step-*.npz"))
            last_good = str(kept[-1].relative_to(run_dir)) if kept else None
            atomic_write_json(run_dir / "diverged.json", {"step": error.step, "last_finite_loss": error.last_finite_loss,
                                                          "last_checkpoint": last_good, "message": str(error)})
            where = f"; the history and the last good checkpoint ({last_good}) are in {run_dir}" if last_good else \
                f"; the history is in {run_dir}"
            raise DivergenceError(f"{error}{where}", step=error.step, last_finite_loss=error.last_finite_loss) from None
        metrics = _final_metrics(model, data, history, stopper, trainer, wall)
        metrics["interrupted"] = state.interrupted
        metrics["engine"] = trainer.engine_used
        metrics["sparse_inputs"] = trainer.sparse_used
        if not state.interrupted:
            atomic_write_json(run_dir / "metrics.json", metrics)
            (run_dir / "metrics.partial.json").unlink(missing_ok=True)  # from an interrupted part
        else:
            atomic_write_json(run_dir / "metrics.partial.json", metrics)
        save_weights(run_dir / "weights.npz", model, mean=data.mean, std=data.std, config=cfg.to_dict())
        _save_predictions(run_dir / "predictions.npz", model, data)
        if owned:
            data = None  # frees the training arrays (~100 MB for the seed split) before plotting
        run_figures(history.to_dict(), metrics, run_dir / "figures", label=cfg.name)
    return RunResult(run_dir=run_dir, metrics=metrics, history=history, interrupted=state.interrupted)


def _final_metrics(model: MLP, data: PreparedData, history: History, stopper: EarlyStopping | None,
                   trainer: Trainer, wall: float) -> dict[str, Any]:
    train_loss, train_acc = model.evaluate(data.x_train, data.y_train)
    val_loss, val_acc = model.evaluate(data.x_val, data.y_val)
    val = history.validation
    best = int(np.argmin(val["val_loss"])) if val["val_loss"] else None
    smoothed = history.train_loss[-trainer.steps_per_epoch:] if history.num_steps else np.array([np.nan])
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
        "normalization": {"mean": data.mean, "std": data.std},
    }


def _save_predictions(path: Path, model: MLP, data: PreparedData) -> None:
    """Validation labels, predictions, probabilities and the most confident mistakes' images."""
    proba = model.predict_proba(data.x_val, prepared=True).astype(np.float32)
    pred = proba.argmax(axis=1)
    wrong = np.flatnonzero(pred != data.y_val)
    order = wrong[np.argsort(-proba[wrong, pred[wrong]])][:MISCLASSIFIED_KEPT]
    atomic_save_npz(path, {
        "y_true": data.y_val.astype(np.int64), "y_pred": pred.astype(np.int64), "proba": proba,
        "misclassified_index": order.astype(np.int64),
        "misclassified_images": data.val_images(order).reshape(-1, 28, 28),
    }, compress=True)


def resume_experiment(run_dir: str | Path, **kwargs) -> RunResult:
    """Continue the run in ``run_dir`` from its newest valid checkpoint."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.toml").exists():
        raise MlpkitError(f"{run_dir} is not a run folder (no config.toml)")
    return run_experiment(load_config(run_dir / "config.toml"), run_dir, resume=True, **kwargs)
