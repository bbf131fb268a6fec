"""The IDX family of data sets (MNIST today; Fashion-MNIST and KMNIST share its format).

Transitional: only MNIST is registered, through `mlpkit.data.mnist.load_mnist`.
"""

from __future__ import annotations

from pathlib import Path

from mlpkit.data.dataset import Dataset

__all__ = ["IDX_DATASETS", "load_idx_dataset"]

#: Registered IDX data sets -> (train size, test size, input shape, number of classes).
IDX_DATASETS: dict[str, tuple[int, int, tuple[int, ...], int]] = {"mnist": (60_000, 10_000, (28, 28), 10)}


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
