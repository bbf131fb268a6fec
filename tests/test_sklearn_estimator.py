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


# ----------------------------------------------------------------- issue 13's training options
# Default settings fitted before these options existed (float32 and float64, per-layer bias and the
# input column, fit and partial_fit, on digits / 16): the first 16 hex digits of the weights' sha256.
# Recorded again once (issue 14, fifth part): the sparse first layer's weight gradient now starts
# its rows with one rounding per product in every kernel (simd.gradient_row), where LLVM had fused
# some of them; the float32 fits moved by up to 1.2e-7 (same scores), the float64 one did not.
RECORDED_DEFAULT_FITS = {
    "default": "ccf31680578d0fc1",
    "f64_es": "7fbd1d26ca5132d1",
    "relu_col": "eca6e72e28c2fc2d",
    "partial": "3de194349226463f",
}

#: non-default combinations: estimator parameters and the same settings as a config (model, train)
COMBINATIONS = {
    "adam_cosine_dropout_smoothing": (
        dict(solver="adam", learning_rate_init=2e-3, lr_schedule="cosine_warmup", warmup_epochs=2, dropout=0.2,
             label_smoothing=0.1, activation="gelu", init="he_normal"),
        dict(dropout_hidden=0.2, activation="gelu", init="he_normal"),
        dict(optimizer="adam", learning_rate=2e-3, schedule="cosine_warmup", warmup_epochs=2, label_smoothing=0.1),
    ),
    "rmsprop_step": (
        dict(solver="rmsprop", momentum=0.0, learning_rate_init=1e-3, lr_schedule="step", lr_step_epochs=5,
             lr_gamma=0.5, activation="elu", init="lecun_normal"),
        dict(activation="elu", init="lecun_normal"),
        dict(optimizer="rmsprop", momentum=0.0, learning_rate=1e-3, schedule="step", lr_step_epochs=5, lr_gamma=0.5),
    ),
    "sgd_nesterov_decay_maxnorm_clip": (
        dict(momentum=0.9, nesterovs_momentum=True, alpha=1e-4, max_norm=3.0, clip_norm=5.0, activation="leaky_relu",
             init="glorot_uniform"),
        dict(max_norm=3.0, activation="leaky_relu", init="glorot_uniform"),
        dict(momentum=0.9, nesterov=True, weight_decay=1e-4, clip_norm=5.0, learning_rate=0.02),
    ),
}  # fmt: skip


def _digest(clf):
    import hashlib

    return hashlib.sha256(clf.model_.flat_parameters.tobytes()).hexdigest()[:16]


@pytest.fixture(scope="module")
def scaled(digits):
    x_train, x_test, y_train, y_test = digits
    scaler = StandardScaler().fit(x_train)
    return scaler.transform(x_train), scaler.transform(x_test), y_train, y_test


def _trainer_directly(x, y, *, seed, epochs, model_options, train_options):
    """The Trainer driven by hand, its optimizer and step options made from a config by runs.training_options."""
    from mlpkit.runs.config_schema import Config, ModelConfig, TrainConfig
    from mlpkit.runs.training_options import build_optimizer, build_step_options, check_training_options
    from mlpkit.train.trainer import Trainer

    cfg = Config(
        model=ModelConfig(hidden=(64,), bias="per_layer", **model_options),
        train=TrainConfig(epochs=epochs, batch_size=32, drop_last=False, **train_options),
    )
    check_training_options(cfg)
    gen = np.random.default_rng(seed)
    m = cfg.model
    model = MLP(list(m.hidden), n_features=x.shape[1], n_classes=10, activation=m.activation, bias=m.bias)
    model.init_weights(gen, m.init)
    optimizer = build_optimizer(cfg.train, model.parameters())
    options, plateau = build_step_options(cfg, optimizer, n_train=len(x))
    trainer = Trainer(
        model, optimizer, rng=gen, epochs=epochs, batch_size=32, drop_last=False, validations_per_epoch=0,
        options=options, plateau=plateau,
    )  # fmt: skip
    trainer.fit(model.prepare_inputs(x), y)
    return model, optimizer


@pytest.mark.parametrize("name", list(COMBINATIONS))
def test_option_combinations_learn_digits_and_equal_the_trainer_driven_directly(scaled, name):
    x_train, x_test, y_train, y_test = scaled
    params, model_options, train_options = COMBINATIONS[name]
    clf = MLPClassifier(max_iter=15, random_state=0, **params).fit(x_train, y_train)
    assert clf.score(x_test, y_test) >= 0.95
    model, optimizer = _trainer_directly(
        x_train, y_train, seed=0, epochs=15, model_options=model_options, train_options=train_options
    )
    assert np.array_equal(clf.model_.flat_parameters, model.flat_parameters)
    assert clf._optimizer.lr == optimizer.lr and type(clf._optimizer) is type(optimizer)
    state, reference = clf._optimizer.state_dict(), optimizer.state_dict()
    assert state.keys() == reference.keys() and all(np.array_equal(state[k], reference[k]) for k in state)


def test_default_settings_fit_bit_identically_to_before_these_options(digits):
    from mlpkit.optim.sgd import SGD
    from mlpkit.train.trainer import Trainer

    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    fits = {
        "default": MLPClassifier(max_iter=3, random_state=0).fit(x, y),
        "f64_es": MLPClassifier(max_iter=3, random_state=0, dtype="float64", early_stopping=True).fit(x, y),
        "relu_col": MLPClassifier(
            max_iter=3, random_state=1, activation="relu", bias="input_column", batch_size=50
        ).fit(x, y),
        "partial": MLPClassifier(random_state=2)
        .partial_fit(x[:900], y[:900], classes=np.arange(10))
        .partial_fit(x[900:], y[900:]),
    }
    assert {name: _digest(clf) for name, clf in fits.items()} == RECORDED_DEFAULT_FITS
    # and the path the estimator took before: SGD made by hand, a Trainer without step options
    gen = np.random.default_rng(0)
    model = MLP([64], n_features=64, n_classes=10, activation="improved_sigmoid", bias="per_layer")
    model.init_weights(gen, "fan_in_normal")
    optimizer = SGD(model.parameters(), lr=0.02, momentum=0.9)
    Trainer(model, optimizer, rng=gen, epochs=3, batch_size=32, drop_last=False, validations_per_epoch=0).fit(
        model.prepare_inputs(x), y
    )
    assert np.array_equal(model.flat_parameters, fits["default"].model_.flat_parameters)
    assert fits["default"]._schedule is None and type(fits["default"]._optimizer) is SGD
    assert all(np.array_equal(v, optimizer.state_dict()[k]) for k, v in fits["default"]._optimizer.state_dict().items())


@pytest.mark.parametrize("name", ["adam_cosine_dropout_smoothing", "sgd_nesterov_decay_maxnorm_clip"])
def test_partial_fit_epochs_equal_fit_and_pickle_mid_training_continues_bit_identically(scaled, name):
    x_train, _, y_train, _ = scaled
    params = COMBINATIONS[name][0]
    whole = MLPClassifier(max_iter=4, random_state=3, **params).fit(x_train, y_train)
    # the schedule of partial_fit is sized on its first call: max_iter epochs of that call's steps
    uninterrupted = MLPClassifier(max_iter=4, random_state=3, **params)
    for _ in range(4):
        uninterrupted.partial_fit(x_train, y_train, classes=np.arange(10))
    assert np.array_equal(uninterrupted.model_.flat_parameters, whole.model_.flat_parameters)
    assert uninterrupted._optimizer.lr == whole._optimizer.lr
    resumed = MLPClassifier(max_iter=4, random_state=3, **params)
    for _ in range(2):
        resumed.partial_fit(x_train, y_train, classes=np.arange(10))
    resumed = pickle.loads(pickle.dumps(resumed))
    assert np.shares_memory(resumed.model_.weights[0], resumed.model_.flat_parameters)
    for _ in range(2):
        resumed.partial_fit(x_train, y_train)
    assert np.array_equal(resumed.model_.flat_parameters, uninterrupted.model_.flat_parameters)
    assert resumed._optimizer.lr == uninterrupted._optimizer.lr and resumed.loss_curve_ == uninterrupted.loss_curve_
    if resumed._schedule is not None:
        assert resumed._schedule.optimizer is resumed._optimizer
        assert resumed._schedule.last_step == uninterrupted._schedule.last_step == 4 * -(-len(x_train) // 32)


def test_warm_start_and_pickle_keep_optimizer_and_schedule_state(scaled):
    x_train, _, y_train, _ = scaled
    params = dict(solver="adamw", alpha=0.01, learning_rate_init=1e-3, lr_schedule="one_cycle", max_lr=5e-3)
    a = MLPClassifier(max_iter=2, random_state=4, warm_start=True, **params).fit(x_train, y_train)
    b = pickle.loads(pickle.dumps(a))
    steps = a._optimizer.steps
    a.fit(x_train, y_train)
    b.fit(x_train, y_train)
    assert a._optimizer.steps == 2 * steps and a._schedule.last_step == 2 * steps  # continued, not restarted
    assert np.array_equal(a.model_.flat_parameters, b.model_.flat_parameters) and a._optimizer.lr == b._optimizer.lr
    assert a.n_iter_ == b.n_iter_ == 4


def test_reduce_on_plateau_steps_at_every_validation_check_and_resumes(scaled):
    x_train, _, y_train, _ = scaled
    params = dict(
        lr_schedule="reduce_on_plateau", plateau_patience=0, lr_gamma=0.5, early_stopping=True, n_iter_no_change=50
    )
    params.update(learning_rate_init=0.2, max_iter=12, warm_start=True, random_state=5)
    a = MLPClassifier(**params).fit(x_train, y_train)
    assert a._schedule.name == "reduce_on_plateau" and a._schedule.last_step == a.n_iter_ == 12
    assert a._optimizer.lr < 0.2  # with no patience, some check did not improve
    b = pickle.loads(pickle.dumps(a))
    a.fit(x_train, y_train)
    b.fit(x_train, y_train)
    assert np.array_equal(a.model_.flat_parameters, b.model_.flat_parameters) and a._optimizer.lr == b._optimizer.lr
    assert a._schedule.last_step == 24


@pytest.mark.parametrize("activation", ["leaky_relu", "elu", "gelu", "silu"])
def test_new_activations_and_initializers_train(scaled, activation):
    x_train, x_test, y_train, y_test = scaled
    init = {"leaky_relu": "he_uniform", "elu": "lecun_uniform", "gelu": "glorot_normal", "silu": "he_normal"}
    clf = MLPClassifier(max_iter=10, activation=activation, init=init[activation], random_state=0)
    assert clf.fit(x_train, y_train).score(x_test, y_test) >= 0.9
    assert clf.model_.activation.name == activation


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("solver", {"solver": "lbfgs"}),
        ("nesterovs_momentum", {"nesterovs_momentum": True, "momentum": 0.0}),
        ("nesterovs_momentum", {"nesterovs_momentum": 1}),
        ("alpha", {"alpha": -1e-4}),
        ("beta_1", {"solver": "adam", "beta_1": 1.0}),
        ("beta_2", {"solver": "adamw", "beta_2": -0.5}),
        ("epsilon", {"solver": "rmsprop", "epsilon": 0.0}),
        ("momentum", {"solver": "rmsprop", "momentum": 1.0}),
        ("lr_schedule", {"lr_schedule": "invscaling"}),
        ("warmup_epochs", {"lr_schedule": "cosine_warmup", "warmup_epochs": 50}),
        ("lr_step_epochs", {"lr_schedule": "step", "lr_step_epochs": 0}),
        ("lr_gamma", {"lr_schedule": "exponential", "lr_gamma": 0.0}),
        ("lr_gamma", {"lr_schedule": "reduce_on_plateau", "early_stopping": True, "lr_gamma": 1.0}),
        ("min_lr", {"lr_schedule": "cosine_warmup", "min_lr": 1.0}),
        ("max_lr", {"lr_schedule": "one_cycle", "max_lr": -1.0}),
        ("plateau_patience", {"lr_schedule": "reduce_on_plateau", "early_stopping": True, "plateau_patience": -1}),
        ("early_stopping", {"lr_schedule": "reduce_on_plateau"}),
        ("dropout", {"dropout": 1.0}),
        ("input_dropout", {"input_dropout": -0.1}),
        ("max_norm", {"max_norm": 0.0}),
        ("label_smoothing", {"label_smoothing": 1.0}),
        ("clip_norm", {"clip_norm": float("nan")}),
        # options the chosen solver or schedule would ignore
        ("beta_1", {"beta_1": 0.8}),
        ("epsilon", {"epsilon": 1e-6}),
        ("nesterovs_momentum", {"solver": "adam", "nesterovs_momentum": True}),
        ("warmup_epochs", {"lr_schedule": "step", "warmup_epochs": 1.0}),
        ("max_lr", {"max_lr": 0.1}),
        ("plateau_patience", {"lr_schedule": "exponential", "plateau_patience": 3}),
    ],
)
def test_bad_training_options_are_one_value_error_naming_the_parameter(name, params):
    x, y = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 2
    clf = MLPClassifier(max_iter=3, **params)
    with pytest.raises(ValueError, match=rf"(^|\W){name}\b"):
        clf.fit(x, y)
    assert not hasattr(clf, "model_")
    with pytest.raises(ValueError, match=rf"(^|\W){name}\b"):
        clone(clf).partial_fit(x, y, classes=[0, 1])


def test_partial_fit_refuses_reduce_on_plateau_it_could_not_step():
    x, y = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 2
    clf = MLPClassifier(lr_schedule="reduce_on_plateau", early_stopping=True)
    with pytest.raises(ValueError, match="partial_fit"):
        clf.partial_fit(x, y, classes=[0, 1])


@parametrize_with_checks(
    [
        MLPClassifier(
            hidden_layer_sizes=(16,), max_iter=20, solver="adam", learning_rate_init=0.01, lr_schedule="cosine_warmup",
            warmup_epochs=2, dropout=0.1, label_smoothing=0.05, clip_norm=5.0, max_norm=4.0, random_state=0,
        )
    ]
)  # fmt: skip
def test_sklearn_estimator_checks_with_modern_options(estimator, check, monkeypatch):
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    check(estimator)
