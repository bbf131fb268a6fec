"""The data of an experiment: the data set its config names, split and prepared for its model.

Separate from `mlpkit.workflows.experiment` so that ``evaluate`` and ``reproduce`` can load and
share data without the training machinery.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlpkit.core.errors import ConfigError
from mlpkit.data.dataset import Dataset
from mlpkit.data.idx_datasets import IDX_DATASETS
from mlpkit.data.prepare import PreparedData, prepare_data
from mlpkit.data.registry import load_dataset
from mlpkit.data.splits import make_split
from mlpkit.runs.config import Config
from mlpkit.runs.training_options import augmentation
from mlpkit.train.augment_feed import AugmentFeed, augmented_inputs

__all__ = ["augment_feed", "data_key", "experiment_data", "load_experiment_dataset", "test_metrics"]


def load_experiment_dataset(cfg: Config, *, data_dir: str | Path | None = None) -> Dataset:
    """The data set ``cfg``'s ``[data]`` table names, with its test part (see `mlpkit.data.registry`).

    Parameters
    ----------
    cfg : Config
        Its ``data`` table names the data set and how to read it.
    data_dir : str, Path or None
        For the IDX family: the folder holding the files (see `mlpkit.data.idx_datasets`).

    Raises
    ------
    DataError, ConfigError
        If the data cannot be had or read (naming the file and the problem).
    """
    d = cfg.data
    return load_dataset(
        d.dataset,
        data_dir=data_dir,
        label_column=d.label_column,
        labels=d.labels,
        test=d.test,
        test_fraction=d.test_fraction,
    )


def experiment_data(cfg: Config, *, data_dir: str | Path | None = None) -> PreparedData:
    """The arrays ``cfg`` trains and validates on: its data set, split and prepared for its model.

    Parameters
    ----------
    cfg : Config
        Its ``data`` table chooses the data set, split and normalization; ``train.dtype`` and
        ``model.bias`` the arrays' form.
    data_dir : str, Path or None
        For the IDX family: where its files are (see `mlpkit.data.idx_datasets`).

    Returns
    -------
    PreparedData
        Normalized with statistics of the training split only.

    Raises
    ------
    DataError, ConfigError
        If the data cannot be had, or the split's sizes do not fit it.
    """
    d = cfg.data
    dataset = load_experiment_dataset(cfg, data_dir=data_dir)
    validation = None
    if d.split == "given" and d.validation is not None:
        validation = load_dataset(d.validation, label_column=d.label_column, test_fraction=0)
    split = make_split(
        dataset,
        d.split,
        n_train=d.n_train,
        n_val=d.n_val,
        val_fraction=d.val_fraction,
        seed=cfg.seed,
        validation=validation,
    )
    prepared = prepare_data(
        split, dtype=cfg.train.dtype, bias_column=cfg.model.bias == "input_column", normalization=d.normalization
    )
    prepared.dataset = d.dataset
    if d.augment != "none":
        if not (split.x_train.dtype == np.uint8 and len(split.image_shape) == 2):
            raise ConfigError(
                f"data.augment needs pictures (uint8 pixels, 2-D inputs); {d.dataset} has"
                f" {split.x_train.dtype} inputs of shape {split.image_shape}"
            )
        prepared.raw_train = split.x_train  # a view of the source: what each epoch augments
    return prepared


def augment_feed(cfg: Config, data: PreparedData, *, first_epoch: int) -> AugmentFeed | None:
    """The background producer of each epoch's augmented training inputs (None without augmentation).

    Epoch e's inputs are a function of (seed, e) only, so a resumed run starting at
    ``first_epoch`` gets exactly the inputs the uninterrupted run had.
    """
    aug = augmentation(cfg.data)
    if aug is None:
        return None
    raw = data.raw_train
    assert raw is not None  # experiment_data keeps it when augmenting
    images = raw.reshape(len(raw), *data.image_shape)
    produce = augmented_inputs(images, aug, cfg.seed, data.normalization, threads=1)
    return AugmentFeed(
        produce,
        len(raw),
        data.n_features,
        dtype=data.x_train.dtype,
        bias_column=data.x_train.shape[1] > data.n_features,
        first=first_epoch,
    )


def test_metrics(cfg: Config, model_file: Path, *, data_dir: str | Path | None = None) -> dict[str, float]:
    """``test_loss`` and ``test_accuracy`` of the trained model on its data set's test part, read
    once, at the end, by ``evaluate`` (never for early stopping or model choice); nothing for the
    ``seed`` split (it validated on the test part) or data without a test part."""
    from mlpkit.workflows.evaluate import evaluate_model

    d = cfg.data
    if d.split == "seed" or not (d.dataset in IDX_DATASETS or d.test is not None or d.test_fraction > 0):
        return {}
    ev = evaluate_model(model_file, split="test", data_dir=data_dir)
    return {"test_loss": ev.loss, "test_accuracy": ev.accuracy, "test_size": ev.n}


def data_key(cfg: Config) -> tuple:
    """Configs with equal keys can share one `experiment_data`."""
    d = cfg.data
    holdout_seed = cfg.seed if d.split == "holdout" else None  # the seed draws holdout's rows
    fields = (d.dataset, d.split, d.n_train, d.n_val, d.val_fraction, d.validation, d.test, d.test_fraction)
    augmenting = d.augment != "none"  # then the prepared data keep the raw training images
    return (
        *fields,
        d.normalization,
        d.label_column,
        d.labels,
        holdout_seed,
        augmenting,
        cfg.train.dtype,
        cfg.model.bias,
    )
