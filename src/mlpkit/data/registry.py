"""Which data set a name or a path means, and its test part.

``[data] dataset`` is a registered name (`DATASET_NAMES`) or a path to the user's own data
(see `mlpkit.data.files`). Sources that ship without a test part (digits, most user files)
get one carved off (`carve_test`): fixed, stratified and independent of the run's seed, so
``evaluate`` later finds exactly the rows training never saw.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from mlpkit.core.errors import ConfigError, DataError
from mlpkit.data.dataset import Dataset
from mlpkit.data.idx_datasets import IDX_DATASETS, load_idx_dataset
from mlpkit.data.splits import stratified_pick

__all__ = [
    "DATASET_NAMES",
    "DEFAULT_TEST_FRACTION",
    "carve_test",
    "check_dataset_spec",
    "is_registered",
    "load_dataset",
]

#: Names `load_dataset` knows without a path.
DATASET_NAMES: tuple[str, ...] = (*IDX_DATASETS, "digits")
#: Share of each class carved off as the test part of a source that has none.
DEFAULT_TEST_FRACTION = 0.2
_CARVE_SEED = 20_240_917  # fixed: the carved test part must not move with the run's seed


def is_registered(spec: str) -> bool:
    """Whether ``spec`` names a registered data set (else it is a path)."""
    return spec in DATASET_NAMES


def load_dataset(
    spec: str,
    *,
    data_dir: str | Path | None = None,
    download: bool = True,
    label_column: str = "label",
    labels: str | Path | None = None,
    test: str | Path | None = None,
    test_fraction: float = DEFAULT_TEST_FRACTION,
) -> Dataset:
    """The data set ``spec`` names, with its test part.

    Parameters
    ----------
    spec : str
        A name in `DATASET_NAMES`, or the path of an ``.npz``, ``.csv``, image folder or IDX file.
    data_dir : str, Path or None
        For the IDX family: the folder holding its files (see `mlpkit.data.idx_datasets`).
    download : bool
        For the IDX family: fetch missing files into the cache.
    label_column : str
        For a CSV file: the column holding the labels.
    labels : str, Path or None
        For an IDX images file: its labels file (default: the name with "images" -> "labels").
    test : str, Path or None
        A file (same kind as ``spec``) to use as the test part of a user's data set.
    test_fraction : float
        In [0, 1): share carved off as the test part when the source has none; 0 carves nothing.

    Returns
    -------
    Dataset

    Raises
    ------
    ConfigError
        For a name that is neither registered nor an existing path.
    DataError
        For a file that cannot be read (naming the file, row or column, and the problem).
    """
    if spec in IDX_DATASETS:
        if test is not None:
            raise ConfigError(f"data.test is for your own files; {spec} has its own test part")
        return load_idx_dataset(spec, data_dir, download=download)
    if spec == "digits":
        from mlpkit.data.digits import load_digits_dataset

        dataset = load_digits_dataset()
    else:
        dataset = _load_path(spec, label_column=label_column, labels=labels)
    if test is not None:
        if spec == "digits":
            raise ConfigError("data.test is for your own files; digits' test part is carved off (data.test_fraction)")
        return _with_test(dataset, _load_path(str(test), label_column=label_column, labels=None))
    if dataset.has_test:
        return dataset
    return carve_test(dataset, test_fraction)


def check_dataset_spec(spec: str, *, what: str = "data set") -> None:
    """Raise ConfigError unless ``spec`` is a registered name or an existing path (read nothing).

    Lets a run be refused before it is announced, when its data cannot even be found.
    """
    if spec in DATASET_NAMES:
        return
    if not Path(spec).expanduser().exists():
        raise ConfigError(
            f"{what} {spec!r} is neither a registered name ({', '.join(DATASET_NAMES)}) nor an existing file or"
            " folder (.npz, .csv, a folder of images with one subfolder per class, or an IDX images file)"
        )


def _load_path(spec: str, *, label_column: str, labels: str | Path | None) -> Dataset:
    check_dataset_spec(spec)
    path = Path(spec).expanduser()
    from mlpkit.data.files import load_file_dataset

    return load_file_dataset(path, label_column=label_column, labels=labels)


def _with_test(dataset: Dataset, test: Dataset) -> Dataset:
    if test.n_features != dataset.n_features:
        raise DataError(
            f"{test.name}: test inputs have {test.n_features} features, {dataset.name} has {dataset.n_features}"
        )
    return replace(dataset, x_test=test.x_train, y_test=test.y_train)


def carve_test(dataset: Dataset, fraction: float) -> Dataset:
    """``dataset`` with about ``fraction`` of each class moved, in source order, to a test part.

    Stratified (each class gives ``round(fraction * count)`` rows, so a file sorted by label
    still gives every class a test share) and drawn from a fixed generator (the same rows every
    time: a model's test part can be found again from its data set alone).

    Raises
    ------
    ConfigError
        If ``fraction`` is outside [0, 1) or leaves no training rows.
    """
    if not 0 <= fraction < 1:
        raise ConfigError(f"data.test_fraction must lie in [0, 1), got {fraction!r}")
    if fraction == 0:
        return dataset
    y = np.asarray(dataset.y_train)
    is_test = np.zeros(len(y), dtype=bool)
    is_test[stratified_pick(y, fraction, np.random.default_rng(_CARVE_SEED))] = True
    if is_test.all():
        raise ConfigError(f"{dataset.name}: data.test_fraction={fraction} leaves no training rows")
    return replace(
        dataset,
        x_train=dataset.x_train[~is_test],
        y_train=y[~is_test],
        x_test=dataset.x_train[is_test],
        y_test=y[is_test],
        test_carved=True,
    )
