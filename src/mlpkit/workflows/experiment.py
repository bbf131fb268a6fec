"""One experiment end to end: config -> data -> model -> training -> run folder.

Used by ``mlpkit train`` and ``mlpkit reproduce``; the pieces underneath stay usable alone.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlpkit.core.errors import CheckpointError, ConfigError, DivergenceError, MlpkitError
from mlpkit.core.fileio import atomic_write_json, atomic_write_text
from mlpkit.data.idx_datasets import IDX_DATASETS
from mlpkit.data.mnist import resolve_data_dir
from mlpkit.data.prepare import PreparedData
from mlpkit.data.registry import check_dataset_spec, is_registered
from mlpkit.data.splits import split_sizes
from mlpkit.engine import precompile
from mlpkit.nn.mlp import MLP
from mlpkit.report.plots import run_figures
from mlpkit.runs import schema
from mlpkit.runs.checkpoints import (
    RUN_CONFIG_KEY,
    checkpoint_files,
    corrupt_checkpoint_files,
    latest_checkpoint,
    recorded_config,
)
from mlpkit.runs.completion import commit_results, withdraw_results
from mlpkit.runs.config import Config, load_config, to_toml, with_overrides
from mlpkit.runs.environment import environment_info
from mlpkit.runs.folder import is_empty, remove_stale_temporaries
from mlpkit.runs.footprint import check_footprint, estimate_footprint
from mlpkit.runs.lock import RunLock
from mlpkit.runs.resume_policy import check_resume_config
from mlpkit.runs.training_options import build_optimizer, build_step_options
from mlpkit.runs.weights import save_weights
from mlpkit.train.callbacks import Callback, Checkpointer, EarlyStopping, History, ProgressBar
from mlpkit.train.interrupt import deferred_interrupts
from mlpkit.train.progress_file import ProgressFile
from mlpkit.train.trainer import Trainer
from mlpkit.workflows.experiment_data import (
    augment_feed,
    experiment_data,
    test_metrics,
)
from mlpkit.workflows.results import final_metrics, save_predictions, save_run_model, write_history


def check_experiment(
    cfg: Config,
    run_dir: str | Path,
    *,
    data_dir: str | Path | None = None,
    data: PreparedData | None = None,
    resume: bool = False,
) -> None:
    """Everything about a run that can be refused before any work: nothing is read, allocated or
    written (the CLI announces a run only after this passed; `run_experiment` calls it first).

    Sizes come from the registry for the IDX family; the sizes of other data sets are only known
    once read, so their memory check waits for ``data`` (`run_experiment` checks again with it).

    Parameters
    ----------
    cfg : Config
        The run's config.
    run_dir : str or Path
        Its folder: must be new or empty (a folder to resume must be a folder).
    data_dir : str, Path or None
        Where an IDX data set is: a folder that was named must exist (unused when ``data`` is given).
    data : PreparedData or None
        Arrays prepared already; None: sizes come from the registry where it knows them.
    resume : bool
        Whether the run continues in ``run_dir``.

    Raises
    ------
    ConfigError
        For a non-empty ``run_dir``, split sizes the data cannot give, a batch larger than the
        training set, or a run that needs more memory than the machine has.
    DataError
        If a named data folder does not exist.
    """
    run_dir = Path(run_dir)
    _check_folder(run_dir, resume=resume)
    if data is None:
        for key in ("dataset", "validation", "test", "labels"):
            spec = getattr(cfg.data, key)
            if spec is not None and (key == "dataset" or not is_registered(spec)):
                check_dataset_spec(spec, what="data set" if key == "dataset" else f"data.{key}")
        facts = IDX_DATASETS.get(cfg.data.dataset)
        if facts is None:
            return
        if cfg.data.dataset == "mnist":
            resolve_data_dir(data_dir)
        n_train, n_val = split_sizes(
            cfg.data.split,
            cfg.data.n_train,
            cfg.data.n_val,
            train_available=facts.n_train,
            test_available=facts.n_test,
        )
        n_features, n_classes = math.prod(facts.input_shape), facts.n_classes
        raw = (facts.n_train + facts.n_test) * (n_features + 1)
    else:
        n_train, n_val, raw = len(data.x_train), len(data.x_val), 0
        n_features, n_classes = data.n_features, len(data.classes)
    if cfg.train.batch_size > n_train:
        raise ConfigError(
            f"train.batch_size {cfg.train.batch_size} is larger than the training set ({n_train} samples)"
        )
    footprint = estimate_footprint(
        cfg, n_train=n_train, n_val=n_val, n_features=n_features, n_classes=n_classes, raw_bytes=raw
    )
    check_footprint(footprint, what=f"config {cfg.name}")


def _check_folder(run_dir: Path, *, resume: bool) -> None:
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"output folder {run_dir} is a file, not a folder; choose another --out")
    if not resume and not is_empty(run_dir):
        raise ConfigError(f"output folder {run_dir} already exists and is not empty; choose another --out")


def build_model(cfg: Config, *, n_features: int = 784, n_classes: int = 10) -> MLP:
    """The untrained model ``cfg`` describes, for inputs of ``n_features`` and ``n_classes`` classes."""
    m = cfg.model
    return MLP(
        m.hidden,
        n_features=n_features,
        n_classes=n_classes,
        activation=m.activation,
        bias=m.bias,
        dtype=cfg.train.dtype,
    )


@dataclass
class RunResult:
    """What `run_experiment` returns: where the run folder is, its final metrics and history,
    and whether Ctrl-C stopped it (then it can be resumed)."""

    run_dir: Path
    metrics: dict[str, Any]
    history: History
    interrupted: bool


def _thread_limit(threads: int | None):
    if not threads:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads)


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
    """Train ``cfg`` and write its run folder (files listed in `mlpkit.runs.schema`).

    Ctrl-C stops cleanly: the run folder is written with what was done and can be resumed.
    The process holds the folder's lock (`mlpkit.runs.lock`) throughout, and commits the results
    as one unit (`mlpkit.runs.completion`), deferring Ctrl-C until they are committed.

    Parameters
    ----------
    cfg : Config
        What to train.
    run_dir : str or Path
        The run folder; must be new or empty unless ``resume``.
    data_dir : str, Path or None
        Where MNIST is (see `mlpkit.data.mnist.load_mnist`); unused when ``data`` is given.
    data : PreparedData or None
        Arrays already prepared for ``cfg`` (see `experiment_data`, `data_key`), e.g. shared
        by several runs; None prepares them here.
    progress : bool or None
        Show a progress bar; None: only on a terminal.
    resume : bool
        Continue from the newest usable checkpoint in ``run_dir`` (see `resume_experiment`);
        ``cfg`` may differ from the config it was made with only in the keys of
        `mlpkit.runs.resume_policy.SAFE_ON_RESUME`, and is then written to ``config.toml``.
    log : callable
        Receives one line per message (warnings, the resume point).

    Returns
    -------
    RunResult

    Raises
    ------
    ConfigError
        If ``run_dir`` is not empty (without ``resume``), the data do not fit the config, or a
        resume's config changed a key that is not safe to change (or asks for fewer epochs
        than were done).
    CheckpointError
        If a resume finds no usable checkpoint (every one unreadable or not fitting the run).
    DivergenceError
        If training diverges (the history and the last good checkpoint are kept).
    DataError
        If MNIST cannot be had.
    RunFolderBusyError
        If another process is writing ``run_dir``.
    RunIOError
        If a file cannot be written (full disk, read-only, ...); what was written stays resumable.
    KeyboardInterrupt
        On Ctrl-C outside the training loop, or during the final writes once they are committed.
    """
    run_dir = Path(run_dir)
    check_experiment(cfg, run_dir, data_dir=data_dir, data=data, resume=resume)
    t = cfg.train
    owned = data is None
    with RunLock(run_dir), _thread_limit(t.threads):
        _check_folder(run_dir, resume=resume)  # again under the lock: another writer may have begun
        if t.engine != "numpy":
            # on a cold kernel cache, compiling starts beside the data load; the first layer's
            # units choose its forward kernel (no hidden layer: the classes, a narrow layer)
            precompile.prestart(t.dtype, cfg.model.hidden[0] if cfg.model.hidden else 0)
        if data is None:
            data = experiment_data(cfg, data_dir=data_dir)
            if cfg.data.dataset not in IDX_DATASETS:  # sizes known only now
                check_experiment(cfg, run_dir, data=data, resume=True)
        model = build_model(cfg, n_features=data.n_features, n_classes=len(data.classes))
        if data.x_train.shape[1] != model.input_width:
            raise ConfigError(
                f"the prepared data have {data.x_train.shape[1]} columns, the model takes"
                f" {model.input_width}: they were prepared for another config"
            )
        if t.batch_size > len(data.x_train):
            raise ConfigError(
                f"train.batch_size {t.batch_size} is larger than the training set ({len(data.x_train)} samples)"
            )
        rng = np.random.default_rng(cfg.seed)
        model.init_weights(rng, cfg.model.init)
        optimizer = build_optimizer(t, model.parameters())
        options, plateau = build_step_options(cfg, optimizer, n_train=len(data.x_train))
        history = History()
        stopper = (
            EarlyStopping(
                patience=t.early_stopping_patience,
                min_delta=t.early_stopping_min_delta,
                restore_best_weights=t.restore_best_weights,
            )
            if t.early_stopping_patience
            else None
        )
        callbacks: list[Callback] = [history] + ([stopper] if stopper else [])
        checkpointer = Checkpointer(
            run_dir / schema.CHECKPOINTS, every=t.checkpoint_every, record={RUN_CONFIG_KEY: cfg.to_dict()}
        )  # what a resume compares with
        callbacks += [checkpointer, ProgressBar(enabled=progress, description=cfg.name)]
        callbacks.append(ProgressFile(run_dir / schema.PROGRESS, history, stopper))  # for live readers
        trainer = Trainer(
            model,
            optimizer,
            rng=rng,
            epochs=t.epochs,
            batch_size=t.batch_size,
            shuffle=cfg.data.shuffle,
            drop_last=t.drop_last,
            validations_per_epoch=t.validations_per_epoch,
            callbacks=callbacks,
            engine=t.engine,
            options=options,
            plateau=plateau,
        )
        trainer.sparse_inputs = t.sparse_inputs
        elapsed_before = 0.0
        if resume:
            _resume(trainer, cfg, run_dir, n_train=len(data.x_train), log=log)
            elapsed_before = checkpointer.elapsed_before  # training time up to that checkpoint
        else:
            run_dir.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(run_dir)
            atomic_write_text(run_dir / schema.CONFIG, to_toml(cfg))
            atomic_write_json(run_dir / schema.ENVIRONMENT, environment_info(seed=cfg.seed, threads=t.threads))
        start = time.perf_counter()
        error: DivergenceError | None = None
        trainer.augment = augment_feed(cfg, data, first_epoch=trainer.state.epoch)
        try:
            state = trainer.fit(data.x_train, data.y_train, data.x_val, data.y_val)  # Ctrl-C: a clean stop
        except DivergenceError as exc:
            error, state = exc, trainer.state
        finally:
            if trainer.augment is not None:
                trainer.augment.close()
        wall = elapsed_before + time.perf_counter() - start
        # The results, one unit (mlpkit.runs.completion): the marker withdrawn first, the metrics with
        # the checksums last. The first Ctrl-C waits for the commit; a second one does not.
        with deferred_interrupts() as stop:
            withdraw_results(run_dir)
            write_history(run_dir, history, error)
            metrics = final_metrics(model, data, history, stopper, trainer, wall)
            metrics["interrupted"] = state.interrupted
            metrics["engine"] = trainer.engine_used
            metrics["engine_fallback_reason"] = trainer.fallback_reason
            metrics["sparse_inputs"] = trainer.sparse_used
            save_weights(run_dir / schema.WEIGHTS, model, normalization=data.normalization, config=cfg.to_dict())
            save_predictions(run_dir / schema.PREDICTIONS, model, data)
            save_run_model(run_dir / schema.MODEL, model, data, cfg.to_dict())
            if error is None and not state.interrupted:
                metrics.update(test_metrics(cfg, run_dir / schema.MODEL, data_dir=data_dir))
            if owned:
                data = None  # frees the training arrays (~100 MB for the seed split) before plotting
            run_figures(history.to_dict(), metrics, run_dir / schema.FIGURES, label=cfg.name)
            commit_results(run_dir, metrics, interrupted=state.interrupted)
        if stop.requested:
            raise KeyboardInterrupt
    return RunResult(run_dir=run_dir, metrics=metrics, history=history, interrupted=state.interrupted)


def _resume(trainer: Trainer, cfg: Config, run_dir: Path, *, n_train: int, log) -> None:
    """Load the newest usable checkpoint of ``run_dir`` into ``trainer``, having checked it all.

    Each candidate, newest first, must record a config that differs from ``cfg`` only in safe
    keys (else ConfigError: nothing is renamed) and hold a training state that fits this run
    (else it is set aside as ``.corrupt`` and the one before is tried). Then ``config.toml``
    says what the run continues with.
    """
    remove_stale_temporaries(run_dir)
    if not checkpoint_files(run_dir):
        if corrupt := corrupt_checkpoint_files(run_dir):
            names = ", ".join(p.name for p in corrupt)
            raise CheckpointError(
                f"every checkpoint of {run_dir} was found unusable by an earlier resume and set"
                f" aside ({names}): nothing is left to resume from; start a new run"
            )
        # stopped before its first checkpoint: nothing was done that could be kept
        log(f"warning: {run_dir} has no checkpoint yet; starting it from the beginning")
        _write_config(run_dir, cfg)
        atomic_write_json(run_dir / schema.ENVIRONMENT, environment_info(seed=cfg.seed, threads=cfg.train.threads))
        return
    geometry = trainer.geometry(n_train)
    current = cfg.to_dict()
    changed: list[str] = []

    def use(state: dict[str, Any], path: Path) -> None:
        changed[:] = check_resume_config(
            recorded_config(state, path.name), current, where=f"{run_dir} from {path.name}"
        )
        trainer.load_state_dict(state, geometry, source=path.name)

    _, path, warnings = latest_checkpoint(run_dir, use)
    for w in warnings:
        log(w)
    _write_config(run_dir, cfg)
    log(
        f"resuming {run_dir} from {path.name} (step {trainer.state.step})"
        + (f" with {', '.join(changed)} changed" if changed else "")
    )


def _write_config(run_dir: Path, cfg: Config) -> None:
    """``config.toml`` holds ``cfg`` (rewritten atomically only when it says something else)."""
    path, text = run_dir / schema.CONFIG, to_toml(cfg)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        atomic_write_text(path, text)


def resume_experiment(run_dir: str | Path, overrides: Sequence[str] = (), **kwargs: Any) -> RunResult:
    """Continue the run in ``run_dir`` from its newest usable checkpoint, with its own config.

    Parameters
    ----------
    run_dir : str or Path
        The run folder.
    overrides : sequence of str
        ``key=value`` items applied to its ``config.toml`` (see `mlpkit.runs.config.with_overrides`):
        only the keys safe on resume may differ from the checkpoint's config, e.g. ``epochs=80``
        to extend a finished run.
    **kwargs
        Go to `run_experiment` (``data_dir``, ``progress``, ``log``).

    Raises
    ------
    MlpkitError
        If ``run_dir`` is not a run folder; otherwise as `run_experiment`.
    """
    run_dir = Path(run_dir)
    if not (run_dir / schema.CONFIG).exists():
        raise MlpkitError(f"{run_dir} is not a run folder (no {schema.CONFIG})")
    cfg = load_config(run_dir / schema.CONFIG)
    if overrides:
        cfg = with_overrides(cfg, list(overrides))
    return run_experiment(cfg, run_dir, resume=True, **kwargs)
