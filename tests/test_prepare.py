"""mlpkit.data.prepare: a split made ready for a model (normalized with the training set's
statistics, the model's dtype, the bias column), and the validation images undone from it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlpkit.data import Mnist, Normalizer, PreparedData, load_mnist, make_split, prepare_data


def tiny_mnist(side: tuple[int, int] = (28, 28), n_train: int = 40, n_test: int = 12) -> Mnist:
    rng = np.random.default_rng(5)
    train = rng.integers(0, 256, (n_train, *side), dtype=np.uint8)
    test = (rng.integers(0, 128, (n_test, *side)) * 2).astype(np.uint8)  # other statistics than train
    return Mnist(train, np.arange(n_train, dtype=np.uint8) % 10, test, np.arange(n_test, dtype=np.uint8) % 10)


@pytest.mark.parametrize("bias_column", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_prepare_normalizes_both_sets_with_the_training_statistics(dtype: str, bias_column: bool) -> None:
    split = make_split(tiny_mnist(), "seed", n_train=40, n_val=12)
    data = prepare_data(split, dtype=dtype, bias_column=bias_column)
    train_stats = Normalizer.fit(split.x_train)
    assert (data.mean, data.std) == (train_stats.mean, train_stats.std)
    assert Normalizer.fit(split.x_val).mean != train_stats.mean  # so a mix-up would show
    width = 784 + bias_column
    assert data.x_train.shape == (40, width) and data.x_val.shape == (12, width)
    assert data.x_train.dtype == np.dtype(dtype) and data.x_val.dtype == np.dtype(dtype)
    expected_val = ((split.x_val.astype(np.float64) - train_stats.mean) / train_stats.std).astype(dtype)
    np.testing.assert_array_equal(data.x_val[:, :784], expected_val)
    np.testing.assert_array_equal(data.x_train[:, :784], train_stats.apply(split.x_train, dtype=dtype))
    if bias_column:
        assert np.all(data.x_train[:, 784] == 1) and np.all(data.x_val[:, 784] == 1)
    assert data.y_train.dtype == np.intp and data.y_val.tolist() == split.y_val.tolist()
    assert data.split_name == "seed" and data.image_shape == (28, 28)


def test_val_images_use_the_split_image_shape_not_784() -> None:
    split = make_split(tiny_mnist(side=(5, 7)), "seed", n_train=40, n_val=12)
    assert split.image_shape == (5, 7) and split.x_train.shape == (40, 35)
    data = prepare_data(split, dtype="float32", bias_column=True)
    rows = np.array([3, 0, 11])
    images = data.val_images(rows)
    assert images.shape == (3, 5, 7) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, split.x_val[rows].reshape(3, 5, 7))
    assert data.val_images(np.array([], dtype=np.intp)).shape == (0, 5, 7)


def test_validation_images_are_recovered_exactly_from_the_prepared_inputs(mnist_path: Path) -> None:
    """The gallery of mistakes keeps no uint8 copy of the validation images: they are undone exactly."""
    split = make_split(load_mnist(mnist_path), "seed")
    for dtype in ("float32", "float64"):
        data = prepare_data(split, dtype=dtype, bias_column=True)
        assert isinstance(data, PreparedData)
        rows = np.arange(len(data.x_val))
        np.testing.assert_array_equal(data.val_images(rows), split.x_val.reshape(-1, 28, 28))
