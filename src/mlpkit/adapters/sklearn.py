"""``MLPClassifier``: mlpkit's MLP, SGD and Trainer behind scikit-learn's estimator contract.

An adapter at the edge: it may import every layer below the workflows and nothing imports it,
so the rest of mlpkit never depends on scikit-learn. ``__init__`` only stores its arguments;
``fit`` validates them, maps labels of any type to 0..K-1 (``classes_``) and trains with the
one training loop (:class:`mlpkit.train.trainer.Trainer`). Scaling is left to a Pipeline, as
scikit-learn's own MLPClassifier does; the inputs are only cast to ``dtype``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from mlpkit.engine.threads import limit_blas_threads
from mlpkit.nn.mlp import MLP
from mlpkit.optim.sgd import SGD
from mlpkit.train.callbacks import EarlyStopping, History, ProgressBar
from mlpkit.train.trainer import Trainer

__all__ = ["MLPClassifier"]

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _sk_validate_data
except ImportError:  # pragma: no cover - scikit-learn 1.3 to 1.5
    _sk_validate_data = None


def _validate_data(est: BaseEstimator, *args: Any, **kwargs: Any) -> Any:
    """scikit-learn's input validation (n_features_in_, feature_names_in_), old and new spelling."""
    if _sk_validate_data is not None:
        return _sk_validate_data(est, *args, **kwargs)
    return est._validate_data(*args, **kwargs)  # pragma: no cover


class MLPClassifier(ClassifierMixin, BaseEstimator):
    """A multilayer-perceptron classifier trained by mlpkit (hand-written backprop, SGD with momentum).

    Parameters
    ----------
    hidden_layer_sizes : sequence of int, default (64,)
        Sizes of the hidden layers, first to last.
    activation : str, default "improved_sigmoid"
        Hidden activation: "sigmoid", "improved_sigmoid", "tanh" or "relu".
    init : str, default "fan_in_normal"
        Weight initializer: "uniform", "fan_in_normal", "glorot_uniform" or "he_normal".
    bias : {"per_layer", "input_column"}, default "per_layer"
        A bias vector per layer (the output layer's bias learns the class priors; scikit-learn's
        convention), or the seed report's constant input column (first layer only).
    learning_rate_init : float, default 0.02
        The SGD learning rate.
    momentum : float, default 0.9
        Heavy-ball momentum in [0, 1): v <- g + momentum v; w <- w - lr v.
    batch_size : int, default 32
        Rows per step; clipped to the training set's size. The last, smaller batch of an
        epoch is used (every sample counts every epoch).
    max_iter : int, default 50
        Epochs (passes over the training set) per ``fit``.
    shuffle : bool, default True
        A new random sample order every epoch.
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the training data (stratified), check the
        validation loss after every epoch, stop after ``n_iter_no_change`` checks without an
        improvement by more than ``tol``, and keep the best weights.
    validation_fraction : float, default 0.1
        The held-out share, in (0, 1); only with ``early_stopping``.
    n_iter_no_change : int, default 10
        Patience, in validation checks (one per epoch); only with ``early_stopping``.
    tol : float, default 1e-4
        The smallest decrease of the validation loss that counts as an improvement.
    random_state : int, RandomState instance or None, default None
        Seeds the initial weights, the validation split and the sample order.
    dtype : {"float32", "float64"}, default "float32"
        Parameters, activations and the cast inputs.
    engine : {"auto", "compiled", "numpy"}, default "auto"
        How steps run (see :mod:`mlpkit.engine.planner`).
    threads : int or None, default None
        BLAS thread limit during ``fit`` and prediction (None: as set outside).
    warm_start : bool, default False
        ``fit`` continues from the previous weights and optimizer state instead of starting over.
    verbose : bool or int, default False
        Show a progress bar over the steps.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels seen by ``fit`` (sorted); predictions are taken from them.
    n_features_in_ : int
        Features seen by ``fit``.
    feature_names_in_ : ndarray of str
        Column names, when ``X`` had string column names.
    loss_curve_ : list of float
        Mean training loss of every epoch (over all ``fit``/``partial_fit`` calls).
    validation_scores_ : list of float or None
        Validation accuracy after every epoch (``early_stopping`` only).
    best_loss_ : float or None
        The lowest entry of ``loss_curve_`` (None with ``early_stopping``).
    best_validation_score_ : float or None
        Validation accuracy of the weights kept (``early_stopping`` only).
    n_iter_ : int
        Epochs run by the last ``fit`` (with ``warm_start`` or ``partial_fit``: in all).
    model_ : mlpkit.nn.mlp.MLP
        The trained network.
    """

    def __init__(
        self,
        hidden_layer_sizes: Sequence[int] = (64,),
        activation: str = "improved_sigmoid",
        init: str = "fan_in_normal",
        bias: str = "per_layer",
        learning_rate_init: float = 0.02,
        momentum: float = 0.9,
        batch_size: int = 32,
        max_iter: int = 50,
        shuffle: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        tol: float = 1e-4,
        random_state: int | np.random.RandomState | None = None,
        dtype: str = "float32",
        engine: str = "auto",
        threads: int | None = None,
        warm_start: bool = False,
        verbose: bool | int = False,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.init = init
        self.bias = bias
        self.learning_rate_init = learning_rate_init
        self.momentum = momentum
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.random_state = random_state
        self.dtype = dtype
        self.engine = engine
        self.threads = threads
        self.warm_start = warm_start
        self.verbose = verbose

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> None:
        """What the network, optimizer and trainer do not check themselves (they raise ConfigError,
        a ValueError, for the rest)."""
        for name in ("max_iter", "batch_size", "n_iter_no_change"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.early_stopping:
            if not 0.0 < self.validation_fraction < 1.0:
                raise ValueError(f"validation_fraction must lie in (0, 1), got {self.validation_fraction!r}")
            if not self.tol >= 0:
                raise ValueError(f"tol must be >= 0, got {self.tol!r}")

    def _validate_X(self, X: Any, *, reset: bool) -> np.ndarray:
        return _validate_data(self, X, reset=reset, dtype=[np.float64, np.float32])

    # ---------------------------------------------------------------- building
    def _rng(self) -> np.random.Generator:
        """A NumPy Generator: seeded by an int ``random_state`` directly, else by one draw from it."""
        if isinstance(self.random_state, (int, np.integer)) and not isinstance(self.random_state, bool):
            return np.random.default_rng(int(self.random_state))
        return np.random.default_rng(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def _build(self, n_features: int, classes: np.ndarray) -> None:
        """A fresh network, optimizer and generator; forgets what earlier fits learned."""
        self.classes_ = classes
        self._gen = self._rng()
        self.model_ = MLP(
            list(self.hidden_layer_sizes),
            n_features=n_features,
            n_classes=len(classes),
            activation=self.activation,
            bias=self.bias,
            dtype=self.dtype,
        ).init_weights(self._gen, self.init)
        self._optimizer = SGD(self.model_.parameters(), lr=self.learning_rate_init, momentum=self.momentum)
        self.loss_curve_: list[float] = []
        self.n_iter_ = 0
        self.best_loss_: float | None = None
        self.validation_scores_: list[float] | None = [] if self.early_stopping else None
        self.best_validation_score_: float | None = None

    def _encode(self, y: np.ndarray) -> np.ndarray:
        """Labels as indices into ``classes_``; an unseen label is a ValueError."""
        codes = np.searchsorted(self.classes_, y)
        codes = np.clip(codes, 0, len(self.classes_) - 1)
        unseen = self.classes_[codes] != y
        if unseen.any():
            raise ValueError(f"y holds labels not in classes {self.classes_.tolist()}: {np.unique(y[unseen]).tolist()}")
        return codes.astype(np.intp)

    # ---------------------------------------------------------------- training
    def _train(self, X: np.ndarray, codes: np.ndarray, epochs: int, *, early_stopping: bool) -> None:
        """``epochs`` epochs of the one training loop on X (validated) and class indices."""
        model = self.model_
        x_val = y_val = None
        callbacks: list[Any] = []
        history = History()
        if early_stopping:
            stratify = codes if np.bincount(codes).min() >= 2 else None
            X, x_val_raw, codes, y_val = train_test_split(
                X, codes, test_size=self.validation_fraction, random_state=self._gen.integers(2**31), stratify=stratify
            )
            x_val = model.prepare_inputs(x_val_raw)
            stopper = EarlyStopping(patience=self.n_iter_no_change, min_delta=self.tol, restore_best_weights=True)
            callbacks.append(stopper)
        callbacks += [history, ProgressBar(enabled=bool(self.verbose), description="MLPClassifier")]
        x = model.prepare_inputs(X)
        trainer = Trainer(
            model,
            self._optimizer,
            rng=self._gen,
            epochs=epochs,
            batch_size=min(int(self.batch_size), len(x)),
            shuffle=bool(self.shuffle),
            drop_last=False,
            validations_per_epoch=1 if early_stopping else 0,
            callbacks=callbacks,
            engine=self.engine,
        )
        with limit_blas_threads(self.threads):
            state = trainer.fit(x, codes, x_val, y_val)
        per_epoch = history.train_loss[: state.epoch * trainer.steps_per_epoch].reshape(state.epoch, -1)
        # an epoch's mean loss over samples: steps weighted by their batch's rows (the last may be smaller)
        rows = np.full(trainer.steps_per_epoch, trainer.batch_size, dtype=np.float64)
        rows[-1] = len(x) - trainer.batch_size * (trainer.steps_per_epoch - 1)
        self.loss_curve_ += (per_epoch @ rows / len(x)).tolist()
        self.n_iter_ += state.epoch
        if early_stopping:
            assert self.validation_scores_ is not None and stopper.best_step is not None  # one check per epoch
            scores = history.validation["val_accuracy"]
            self.validation_scores_ += scores
            # the weights kept (restore_best_weights) are those of the check with the lowest loss
            self.best_validation_score_ = float(scores[history.validation["step"].index(float(stopper.best_step))])
        else:
            self.best_loss_ = float(min(self.loss_curve_))

    def fit(self, X: Any, y: Any) -> MLPClassifier:
        """Train on X (n_samples, n_features) and labels y of any type, for ``max_iter`` epochs.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Numbers (cast to ``dtype``); no NaN or infinity.
        y : array-like of shape (n_samples,)
            Class labels: integers, strings, any values ``np.unique`` can sort; at least two classes.

        Returns
        -------
        self : MLPClassifier

        Raises
        ------
        ValueError
            Bad parameters, inputs or labels (mlpkit's ConfigError and InputError are ValueErrors).
        """
        self._check_params()
        X, y = _validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(f"MLPClassifier needs samples of at least 2 classes; y holds one class: {classes[0]!r}")
        warm = self.warm_start and hasattr(self, "model_") and np.array_equal(classes, self.classes_)
        if self.warm_start and hasattr(self, "model_") and not warm:
            raise ValueError(f"warm_start: y has classes {classes.tolist()}, the model {self.classes_.tolist()}")
        if not warm:
            self._build(X.shape[1], classes)
        self._train(X, self._encode(y), int(self.max_iter), early_stopping=bool(self.early_stopping))
        return self

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> MLPClassifier:
        """One epoch over X, y, continuing from the current weights (no early stopping).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        classes : array-like, optional
            Every class that will ever be seen; required on the first call, ignored afterwards
            unless it differs (a ValueError).

        Returns
        -------
        self : MLPClassifier
        """
        first = not hasattr(self, "model_")
        if first:
            self._check_params()
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit")
        X, y = _validate_data(self, X, y, dtype=[np.float64, np.float32], reset=first)
        check_classification_targets(y)
        if first:
            self._build(X.shape[1], np.unique(np.asarray(classes)))
        elif classes is not None and not np.array_equal(np.unique(np.asarray(classes)), self.classes_):
            raise ValueError(
                f"classes {np.unique(classes).tolist()} differ from the first call's {self.classes_.tolist()}"
            )
        self._train(X, self._encode(y), 1, early_stopping=False)
        return self

    # -------------------------------------------------------------- prediction
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (n_samples, n_classes), columns in the order of ``classes_``."""
        check_is_fitted(self, "model_")
        X = self._validate_X(X, reset=False)
        with limit_blas_threads(self.threads):
            return self.model_.predict_proba(X)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Natural logarithm of ``predict_proba`` (-inf where a probability underflowed to 0)."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row, as labels from ``classes_``."""
        check_is_fitted(self, "model_")
        X = self._validate_X(X, reset=False)
        with limit_blas_threads(self.threads):
            return self.classes_[self.model_.predict(X)]

    # ------------------------------------------------------------------ pickle
    def __getstate__(self) -> dict[str, Any]:
        """The network and the optimizer as plain arrays: their parameter views of one flat buffer
        would come back from pickle as separate copies, no longer updated together."""
        state = dict(super().__getstate__())  # scikit-learn may hand back self.__dict__ itself
        model = state.pop("model_", None)
        optimizer = state.pop("_optimizer", None)
        if model is not None:
            state["_model_spec"] = {
                "hidden": model.hidden,
                "n_features": model.n_features,
                "n_classes": model.n_classes,
                "activation": model.activation.name,
                "bias": model.bias,
                "dtype": model.dtype.name,
            }
            state["_model_weights"] = model.state_dict()
            state["_optimizer_state"] = optimizer.state_dict() if optimizer is not None else None
            state["_optimizer_settings"] = (optimizer.lr, optimizer.momentum) if optimizer is not None else None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        spec = state.pop("_model_spec", None)
        weights = state.pop("_model_weights", None)
        opt_state = state.pop("_optimizer_state", None)
        opt_settings = state.pop("_optimizer_settings", None)
        super().__setstate__(state)
        if spec is not None:
            hidden = spec.pop("hidden")
            self.model_ = MLP(hidden, **spec)
            self.model_.load_state_dict(weights)
            if opt_settings is not None:
                lr, momentum = opt_settings
                self._optimizer = SGD(self.model_.parameters(), lr=lr, momentum=momentum)
                self._optimizer.load_state_dict(opt_state)
