"""The data of an experiment: the data set its config names, split and prepared for its model.

Separate from `mlpkit.workflows.experiment` so that ``evaluate`` and ``reproduce`` can load and
share data without the training machinery.
"""

from __future__ import annotations

from pathlib import Path

from mlpkit.data.dataset import Dataset
from mlpkit.data.prepare import PreparedData, prepare_data
from mlpkit.data.registry import load_dataset
from mlpkit.data.splits import make_split
from mlpkit.runs.config import Config

__all__ = ["data_key", "experiment_data", "load_experiment_dataset"]


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
    return prepared


def data_key(cfg: Config) -> tuple:
    """Configs with equal keys can share one `experiment_data`."""
    d = cfg.data
    holdout_seed = cfg.seed if d.split == "holdout" else None  # the seed draws holdout's rows
    fields = (d.dataset, d.split, d.n_train, d.n_val, d.val_fraction, d.validation, d.test, d.test_fraction)
    return (*fields, d.normalization, d.label_column, d.labels, holdout_seed, cfg.train.dtype, cfg.model.bias)
