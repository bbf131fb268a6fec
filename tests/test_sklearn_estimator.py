"""mlpkit.MLPClassifier: scikit-learn's own estimator checks, its tools (Pipeline, GridSearchCV,
cross_val_score, clone, pickle) and accuracy on scikit-learn's digits."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from mlpkit import MLPClassifier
from mlpkit.nn.mlp import MLP

SMALL = MLPClassifier(hidden_layer_sizes=(16,), max_iter=20, learning_rate_init=0.05, random_state=0)


@parametrize_with_checks([SMALL])
def test_sklearn_estimator_checks(estimator, check, monkeypatch):
    # check_array_api_input runs only on NumPy here (the estimator does not claim array API support),
    # and skips itself unless this variable is set: set it so that it runs instead of skipping
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    check(estimator)


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    return train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)


@pytest.fixture(scope="module")
def fitted(digits):
    x_train, _, y_train, _ = digits
    return make_pipeline(StandardScaler(), MLPClassifier(max_iter=30, random_state=0)).fit(x_train, y_train)


def test_digits_accuracy_after_standardization(digits, fitted):
    _, x_test, _, y_test = digits
    assert fitted.score(x_test, y_test) >= 0.95
    clf = fitted[-1]
    assert isinstance(clf.model_, MLP) and clf.model_.hidden == [64]
    assert clf.n_features_in_ == 64 and clf.n_iter_ == 30 and len(clf.loss_curve_) == 30
    assert clf.loss_curve_[-1] < clf.loss_curve_[0] and clf.best_loss_ == min(clf.loss_curve_)
    assert clf.validation_scores_ is None and clf.best_validation_score_ is None


def test_string_and_sparse_integer_labels_round_trip(digits):
    x_train, x_test, y_train, y_test = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    for encode in (lambda y: names[y], lambda y: 1000 - 7 * y):
        pipe = make_pipeline(StandardScaler(), MLPClassifier(max_iter=30, random_state=0))
        pipe.fit(x_train, encode(y_train))
        predicted = pipe.predict(x_test)
        assert set(predicted) <= set(encode(np.arange(10)))
        assert np.mean(predicted == encode(y_test)) >= 0.95
        assert list(pipe[-1].classes_) == sorted(encode(np.arange(10)))
        # predict_proba's columns follow classes_
        best = pipe[-1].classes_[pipe.predict_proba(x_test).argmax(axis=1)]
        assert np.array_equal(best, predicted)


def test_pickle_round_trip_predicts_identically_and_trains_on_alike(digits, fitted):
    x_train, x_test, y_train, _ = digits
    copy = pickle.loads(pickle.dumps(fitted))
    assert np.array_equal(copy.predict_proba(x_test), fitted.predict_proba(x_test))
    # the restored network's parameters are views of one buffer again: further training matches
    a, b = clone(fitted).fit(x_train, y_train), None
    b = pickle.loads(pickle.dumps(a))
    xs = a[0].transform(x_train)
    a[-1].partial_fit(xs, y_train)
    b[-1].partial_fit(xs, y_train)
    assert np.array_equal(a.predict_proba(x_test), b.predict_proba(x_test))
    assert np.shares_memory(b[-1].model_.weights[0], b[-1].model_.flat_parameters)


def test_clone_gives_an_unfitted_copy_with_the_same_parameters(fitted):
    copy = clone(fitted[-1])
    assert copy.get_params() == fitted[-1].get_params()
    assert not hasattr(copy, "model_")


def test_same_random_state_same_model_and_warm_start_continues(digits):
    x_train, x_test, y_train, _ = digits
    x = StandardScaler().fit(x_train).transform(x_train)
    a = MLPClassifier(max_iter=3, random_state=1).fit(x, y_train)
    b = MLPClassifier(max_iter=3, random_state=1).fit(x, y_train)
    assert np.array_equal(a.model_.flat_parameters, b.model_.flat_parameters)
    warm = MLPClassifier(max_iter=3, random_state=1, warm_start=True).fit(x, y_train)
    before = warm.model_.flat_parameters.copy()
    warm.fit(x, y_train)
    assert warm.n_iter_ == 6 and len(warm.loss_curve_) == 6
    assert not np.array_equal(before, warm.model_.flat_parameters)
    cold = MLPClassifier(max_iter=3, random_state=1).fit(x, y_train).fit(x, y_train)
    assert cold.n_iter_ == 3 and np.array_equal(cold.model_.flat_parameters, a.model_.flat_parameters)


def test_early_stopping_records_validation_and_stops(digits):
    x_train, _, y_train, _ = digits
    x = StandardScaler().fit(x_train).transform(x_train)
    clf = MLPClassifier(max_iter=200, early_stopping=True, n_iter_no_change=3, tol=0.0, random_state=0).fit(x, y_train)
    assert clf.n_iter_ < 200 and len(clf.validation_scores_) == clf.n_iter_ == len(clf.loss_curve_)
    assert clf.best_loss_ is None and clf.best_validation_score_ in clf.validation_scores_
    assert clf.best_validation_score_ >= 0.9


def test_partial_fit_needs_classes_first_and_runs_one_epoch(digits):
    x_train, x_test, y_train, y_test = digits
    scaler = StandardScaler().fit(x_train)
    clf = MLPClassifier(random_state=0)
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(scaler.transform(x_train), y_train)
    half = len(x_train) // 2
    clf.partial_fit(scaler.transform(x_train[:half]), y_train[:half], classes=np.arange(10))
    clf.partial_fit(scaler.transform(x_train[half:]), y_train[half:])
    assert clf.n_iter_ == 2 and len(clf.loss_curve_) == 2
    assert clf.score(scaler.transform(x_test), y_test) > 0.8
    with pytest.raises(ValueError, match="not in classes"):
        clf.partial_fit(scaler.transform(x_train[:5]), np.full(5, 11))


def test_grid_search_and_cross_val_score(digits):
    x_train, _, y_train, _ = digits
    pipe = Pipeline([("scale", StandardScaler()), ("mlp", MLPClassifier(max_iter=10, random_state=0))])
    scores = cross_val_score(pipe, x_train, y_train, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.85
    grid = GridSearchCV(pipe, {"mlp__hidden_layer_sizes": [(8,), (32,)]}, cv=2, n_jobs=2).fit(x_train, y_train)
    assert grid.best_params_["mlp__hidden_layer_sizes"] in [(8,), (32,)]
    assert grid.best_estimator_[-1].model_.hidden == list(grid.best_params_["mlp__hidden_layer_sizes"])
    assert grid.score(x_train, y_train) > 0.9


def test_feature_names_are_kept():
    pd = pytest.importorskip("pandas")
    x, y = load_digits(return_X_y=True)
    frame = pd.DataFrame(x[:200], columns=[f"pixel{i}" for i in range(64)])
    clf = MLPClassifier(max_iter=2, random_state=0).fit(frame, y[:200])
    assert list(clf.feature_names_in_) == list(frame.columns)


def test_bad_parameters_are_value_errors_raised_by_fit():
    x, y = np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2
    for bad in (
        {"max_iter": 0},
        {"activation": "nope"},
        {"learning_rate_init": -1.0},
        {"momentum": 1.5},
        {"dtype": "float16"},
        {"engine": "gpu"},
        {"early_stopping": True, "validation_fraction": 1.0},
    ):
        clf = MLPClassifier(**bad)  # __init__ stores only
        with pytest.raises(ValueError):
            clf.fit(x, y)
    with pytest.raises(ValueError, match="2 classes"):
        MLPClassifier().fit(x, np.zeros(20))


def test_importing_mlpkit_does_not_import_sklearn():
    code = (
        "import sys, mlpkit, mlpkit.adapters; assert 'sklearn' not in sys.modules; mlpkit.MLPClassifier;"
        " assert 'sklearn' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_early_stopping_holds_out_validation_fraction(digits):
    # every validation accuracy is a count over the held-out rows: k / ceil(fraction * n_samples)
    x_train, _, y_train, _ = digits
    x = StandardScaler().fit(x_train).transform(x_train)
    for fraction in (0.1, 0.25):
        n_val = int(np.ceil(fraction * len(x)))  # train_test_split's test size (135 and 337 rows)
        clf = MLPClassifier(max_iter=4, early_stopping=True, validation_fraction=fraction, random_state=0)
        scores = np.asarray(clf.fit(x, y_train).validation_scores_) * n_val
        assert len(scores) == 4 and np.allclose(scores, np.round(scores), atol=1e-3), (fraction, scores)


def test_non_contiguous_inputs_train_like_a_contiguous_copy(digits):
    x_train, x_test, y_train, _ = digits
    x = StandardScaler().fit(x_train).transform(x_train)
    wide = np.repeat(x, 2, axis=1)  # x == wide[:, ::2], a strided view
    views = (np.asfortranarray(x), wide[:, ::2], np.asfortranarray(x).astype(np.float32))
    reference = MLPClassifier(max_iter=2, random_state=0).fit(np.ascontiguousarray(x), y_train)
    for view in views:
        assert not view.flags.c_contiguous
        clf = MLPClassifier(max_iter=2, random_state=0).fit(view, y_train)
        assert np.array_equal(clf.model_.flat_parameters, reference.model_.flat_parameters)
        assert np.array_equal(clf.predict_proba(view), reference.predict_proba(x))
    # labels from a strided view of a larger array
    labels = np.stack([y_train, -y_train], axis=1)[:, 0]
    assert not labels.flags.c_contiguous
    clf = MLPClassifier(max_iter=2, random_state=0).fit(x, labels)
    assert np.array_equal(clf.model_.flat_parameters, reference.model_.flat_parameters)


def test_feature_names_are_checked_at_prediction():
    import pandas as pd

    x, y = load_digits(return_X_y=True)
    columns = [f"pixel{i}" for i in range(64)]
    frame = pd.DataFrame(x[:200], columns=columns)
    clf = MLPClassifier(max_iter=2, random_state=0).fit(frame, y[:200])
    assert isinstance(clf.feature_names_in_, np.ndarray) and clf.n_features_in_ == 64
    with pytest.warns(UserWarning, match="feature names"):  # an array where names were seen: a warning only
        from_array = clf.predict_proba(frame.to_numpy())
    assert np.array_equal(clf.predict_proba(frame), from_array)
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(frame.rename(columns={"pixel0": "other"}))
    # a DataFrame inside a Pipeline: the scaler sees the names, the classifier an array
    pipe = make_pipeline(StandardScaler(), MLPClassifier(max_iter=2, random_state=0)).fit(frame, y[:200])
    assert list(pipe.feature_names_in_) == columns and not hasattr(pipe[-1], "feature_names_in_")


def test_partial_fit_keeps_every_class_it_was_told_about(digits):
    x_train, x_test, y_train, _ = digits
    scaler = StandardScaler().fit(x_train)
    names = np.array(list("abcdefghij"))
    first = y_train < 5  # the first batch holds only half of the classes
    clf = MLPClassifier(random_state=0).partial_fit(scaler.transform(x_train[first]), names[y_train[first]], names)
    assert list(clf.classes_) == list(names) and clf.predict_proba(scaler.transform(x_test)).shape == (len(x_test), 10)
    clf.partial_fit(scaler.transform(x_train), names[y_train], classes=names[::-1])  # the same set, any order
    assert clf.n_iter_ == 2 and set(clf.predict(scaler.transform(x_test))) <= set(names)
    with pytest.raises(ValueError, match="differ"):
        clf.partial_fit(scaler.transform(x_train[:5]), names[y_train[:5]], classes=names[:5])


def test_warm_start_refuses_other_classes_and_clone_forgets_the_fit(digits):
    x_train, _, y_train, _ = digits
    x = StandardScaler().fit(x_train).transform(x_train)
    clf = MLPClassifier(max_iter=1, random_state=0, warm_start=True).fit(x, y_train).fit(x, y_train)
    before = clf.model_.flat_parameters.copy()
    with pytest.raises(ValueError, match="warm_start"):
        clf.fit(x, np.where(y_train == 9, 8, y_train))
    assert clf.n_iter_ == 2 and np.array_equal(clf.model_.flat_parameters, before)
    copy = clone(clf)
    assert copy.warm_start and not hasattr(copy, "model_")
    copy.fit(x, y_train)  # starts over: one epoch from the initial weights, not a third
    fresh = MLPClassifier(max_iter=1, random_state=0).fit(x, y_train)
    assert copy.n_iter_ == 1 and np.array_equal(copy.model_.flat_parameters, fresh.model_.flat_parameters)
    assert not np.array_equal(copy.model_.flat_parameters, before)


def test_pickle_keeps_labels_early_stopping_record_and_unfitted_state(digits):
    x_train, x_test, y_train, _ = digits
    x = StandardScaler().fit(x_train).transform(x_train)
    unfitted = pickle.loads(pickle.dumps(MLPClassifier(hidden_layer_sizes=(8,), random_state=3)))
    assert unfitted.get_params()["hidden_layer_sizes"] == (8,) and not hasattr(unfitted, "model_")
    labels = np.array([f"digit {d}" for d in range(10)])[y_train]
    clf = MLPClassifier(max_iter=3, early_stopping=True, random_state=0).fit(x, labels)
    copy = pickle.loads(pickle.dumps(clf))
    assert copy.validation_scores_ == clf.validation_scores_
    assert copy.best_validation_score_ == clf.best_validation_score_
    assert np.array_equal(copy.classes_, clf.classes_) and np.array_equal(copy.predict(x), clf.predict(x))
