"""The IDX family of data sets (MNIST today; Fashion-MNIST and KMNIST share its format).

Transitional: only MNIST is registered, through `mlpkit.data.mnist.load_mnist`.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from mlpkit.data.dataset import Dataset

__all__ = ["IDX_DATASETS", "load_idx_dataset"]


class IdxFacts(NamedTuple):
    """What is known of a registered IDX data set without reading it."""

    n_train: int
    n_test: int
    input_shape: tuple[int, ...]
    n_classes: int


#: Registered IDX data sets and their sizes.
IDX_DATASETS: dict[str, IdxFacts] = {"mnist": IdxFacts(60_000, 10_000, (28, 28), 10)}


def load_idx_dataset(name: str, data_dir: str | Path | None = None, *, download: bool = True) -> Dataset:
    """The registered IDX data set ``name``, verified (see `mlpkit.data.mnist.load_mnist`)."""
    from mlpkit.data.mnist import load_mnist

    m = load_mnist(data_dir, download=download)
    return Dataset(
        name=name,
        x_train=m.train_images,
        y_train=m.train_labels,
        x_test=m.test_images,
        y_test=m.test_labels,
        input_shape=(28, 28),
        classes=tuple(range(10)),
    )
