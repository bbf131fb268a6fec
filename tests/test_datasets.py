"""Data sets beyond MNIST: the registry, the carved test part, the splits (seed, full, holdout,
given), the normalization kinds and labels of any type, on tiny generated data."""

from __future__ import annotations

import numpy as np
import pytest

from mlpkit.core.errors import ConfigError, DataError
from mlpkit.data.dataset import Dataset
from mlpkit.data.normalize import Normalization, Normalizer
from mlpkit.data.prepare import class_index, prepare_data
from mlpkit.data.registry import DATASET_NAMES, carve_test, load_dataset
from mlpkit.data.splits import make_split, stratified_pick


def table(n: int = 200, width: int = 5, labels: np.ndarray | None = None, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    y = labels if labels is not None else np.array(["cat", "dog", "emu", "fox"])[np.arange(n) % 4]
    return Dataset(name="table.csv", x_train=rng.normal(3.0, 2.0, (len(y), width)), y_train=y, input_shape=(width,))


def test_registered_names_include_the_idx_family_and_digits() -> None:
    assert {"mnist", "fashion-mnist", "kmnist", "digits"} <= set(DATASET_NAMES)


def test_digits_come_from_scikit_learn_with_a_fixed_stratified_test_part() -> None:
    from sklearn.datasets import load_digits

    digits = load_dataset("digits")
    assert digits.input_shape == (8, 8) and digits.x_train.dtype == np.uint8
    assert len(digits.x_train) + len(digits.x_test) == 1797 and digits.test_carved
    assert digits.classes == tuple(range(10))
    counts = np.bincount(digits.y_test, minlength=10)
    assert counts.min() >= 34 and counts.max() <= 38  # about a fifth of each ~180-image class
    again = load_dataset("digits")
    np.testing.assert_array_equal(again.x_test, digits.x_test)  # fixed: not drawn anew
    source = load_digits()
    rows = {r.tobytes() for r in source.images.astype(np.uint8).reshape(1797, -1)}
    assert all(r.tobytes() in rows for r in digits.x_test.reshape(len(digits.x_test), -1))


def test_an_unknown_name_is_one_error_listing_the_names() -> None:
    with pytest.raises(ConfigError, match=r"neither a registered name \(mnist, fashion-mnist, kmnist, digits\)"):
        load_dataset("no-such-data")


def test_carved_test_part_is_stratified_fixed_and_disjoint() -> None:
    labels = np.repeat(np.array([3, 7, 42]), [100, 50, 10])  # sorted by label, as many CSVs are
    ds = table(labels=labels)
    carved = carve_test(ds, 0.2)
    assert carved.test_carved and len(carved.x_train) + len(carved.x_test) == 160
    assert sorted(np.unique(carved.y_test, return_counts=True)[1].tolist()) == [2, 10, 20]
    train_rows = {r.tobytes() for r in carved.x_train}
    assert not any(r.tobytes() in train_rows for r in carved.x_test)
    np.testing.assert_array_equal(carve_test(ds, 0.2).x_test, carved.x_test)
    assert carve_test(ds, 0).x_test is None
    with pytest.raises(ConfigError, match="test_fraction"):
        carve_test(ds, 1.0)


def test_holdout_is_stratified_seeded_and_leaves_the_test_part_alone() -> None:
    ds = carve_test(table(n=400), 0.25)
    a = make_split(ds, "holdout", val_fraction=0.1, seed=1)
    b = make_split(ds, "holdout", val_fraction=0.1, seed=1)
    c = make_split(ds, "holdout", val_fraction=0.1, seed=2)
    assert (len(a.x_val), len(a.x_train)) == (32, 268)  # round(0.1 * 75) = 8 of each class's 75
    np.testing.assert_array_equal(a.x_val, b.x_val)
    assert not np.array_equal(a.x_val, c.x_val)
    assert sorted(np.unique(a.y_val, return_counts=True)[1].tolist()) == [8, 8, 8, 8]
    np.testing.assert_array_equal(a.x_test, ds.x_test.reshape(len(ds.x_test), -1))
    val_rows = {r.tobytes() for r in a.x_val}
    assert not any(r.tobytes() in val_rows for r in a.x_train)
    small = make_split(ds, "holdout", n_train=10, n_val=4)
    assert (len(small.x_train), len(small.x_val)) == (10, 4)


def test_given_split_validates_on_the_file_and_checks_its_width() -> None:
    ds, val = table(), table(n=40, seed=5)
    split = make_split(ds, "given", validation=val)
    np.testing.assert_array_equal(split.x_val, val.x_train)
    assert len(split.x_train) == len(ds.x_train)
    with pytest.raises(ConfigError, match="needs a validation file"):
        make_split(ds, "given")
    with pytest.raises(DataError, match="features"):
        make_split(ds, "given", validation=table(width=6))
    with pytest.raises(ConfigError, match="only used by split 'given'"):
        make_split(ds, "holdout", validation=val)


def test_seed_split_needs_a_test_part_and_caps_its_sizes() -> None:
    with pytest.raises(ConfigError, match="split 'seed' validates on the test part"):
        make_split(table(), "seed")
    split = make_split(carve_test(table(), 0.2), "seed")
    assert (len(split.x_train), len(split.x_val)) == (160, 40)  # all there is, below 20,000 / 10,000


def test_stratified_pick_rounds_per_class() -> None:
    y = np.array([0] * 10 + [1] * 3)
    picked = stratified_pick(y, 0.5, np.random.default_rng(0))
    assert np.count_nonzero(y[picked] == 0) == 5 and np.count_nonzero(y[picked] == 1) == 2
    assert np.all(np.diff(picked) > 0)


def test_per_feature_normalization_standardizes_each_column() -> None:
    rng = np.random.default_rng(3)
    x = np.column_stack([rng.normal(100, 5, 3000), rng.normal(-2, 0.01, 3000), np.full(3000, 7.0)])
    norm = Normalization.fit(x, "per_feature")
    np.testing.assert_allclose(norm.mean, x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(norm.std[:2], x.std(axis=0)[:2], rtol=1e-10)
    assert norm.std[2] == 1.0  # a constant column is not divided by zero
    out = norm.apply(x, np.float64, bias_column=True)
    np.testing.assert_allclose(out[:, :2].mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(out[:, :2].std(axis=0), 1, rtol=1e-9)
    assert np.all(out[:, 2] == 0) and np.all(out[:, 3] == 1)
    np.testing.assert_allclose(norm.undo(out[:, :3]), x, rtol=1e-12)


def test_global_normalization_is_the_seed_normalizer_to_the_bit_and_none_is_identity() -> None:
    x = np.random.default_rng(4).integers(0, 256, (300, 28, 28), dtype=np.uint8)
    seed = Normalizer.fit(x)
    norm = Normalization.fit(x, "global")
    assert (norm.mean, norm.std) == (seed.mean, seed.std)
    np.testing.assert_array_equal(norm.apply(x, np.float32), seed.apply(x, np.float32))
    np.testing.assert_array_equal(Normalization.fit(x, "none").apply(x, np.float64), x.reshape(300, -1))
    with pytest.raises(DataError, match="unknown normalization kind"):
        Normalization.fit(x, "minmax")


def test_labels_of_any_type_map_to_classes_and_unknown_ones_are_named() -> None:
    assert class_index(np.array([42, 3, 7, 3]), (3, 7, 42)).tolist() == [2, 0, 1, 0]
    assert class_index(np.array(["b", "a"]), ("a", "b")).tolist() == [1, 0]
    with pytest.raises(DataError, match=r"validation labels: label\(s\) 'zebra' do not occur"):
        class_index(np.array(["a", "zebra"]), ("a", "b"), what="validation labels")
    with pytest.raises(DataError, match=r"label\(s\) 10 are not among the 10 classes"):
        class_index(np.array([1, 10]), tuple(range(10)))


def test_prepare_maps_string_labels_and_fits_on_the_training_split_only() -> None:
    split = make_split(carve_test(table(n=200, width=3), 0.2), "holdout", val_fraction=0.25)
    data = prepare_data(split, dtype="float32", bias_column=False, normalization="per_feature")
    assert data.classes == ("cat", "dog", "emu", "fox")
    assert [data.classes[i] for i in data.y_val] == split.y_val.tolist()
    np.testing.assert_allclose(data.normalization.mean, split.x_train.mean(axis=0), rtol=1e-12)
    assert data.mean is None and data.raw_uint8 is False


def test_prepare_refuses_non_finite_inputs_naming_row_and_column() -> None:
    ds = table(n=40)
    x = ds.x_train.copy()
    x[17, 3] = np.nan
    bad = Dataset(name="t.csv", x_train=x, y_train=ds.y_train, input_shape=(5,))
    split = make_split(bad, "full", n_train=30, n_val=10)
    with pytest.raises(DataError, match=r"training inputs hold a NaN or infinite value \(row 17, column 3\)"):
        prepare_data(split, dtype="float32", bias_column=True)
