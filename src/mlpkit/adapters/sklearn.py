"""``MLPClassifier``: mlpkit's MLP, optimizers and Trainer behind scikit-learn's estimator contract.

An adapter at the edge: it may import every layer below the workflows and nothing imports it,
so the rest of mlpkit never depends on scikit-learn. ``__init__`` only stores its arguments;
``fit`` validates them, maps labels of any type to 0..K-1 (``classes_``) and trains with the
one training loop (:class:`mlpkit.train.trainer.Trainer`). Scaling is left to a Pipeline, as
scikit-learn's own MLPClassifier does; the inputs are only cast to ``dtype``. What it trains
with besides the network (optimizer, schedule, dropout and the like) is made, checked and
described for pickle by :mod:`mlpkit.adapters.sklearn_options`; the epochs run in
:mod:`mlpkit.adapters.sklearn_training`, pickling in :mod:`mlpkit.adapters.sklearn_pickle`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from mlpkit.adapters import sklearn_options as options
from mlpkit.adapters.sklearn_pickle import pack_fitted, unpack_fitted
from mlpkit.adapters.sklearn_training import train_epochs
from mlpkit.engine.threads import limit_blas_threads
from mlpkit.nn.mlp import MLP
from mlpkit.optim.schedules import Schedule

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
    """A multilayer-perceptron classifier trained by mlpkit (hand-written backprop, SGD, Adam, RMSprop).

    Parameters
    ----------
    hidden_layer_sizes : sequence of int, default (64,)
        Sizes of the hidden layers, first to last.
    activation : str, default "improved_sigmoid"
        Hidden activation, a key of :data:`mlpkit.nn.activations.ACTIVATIONS` ("sigmoid",
        "improved_sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "silu").
    init : str, default "fan_in_normal"
        Weight initializer, a key of :data:`mlpkit.nn.initializers.INITIALIZERS` ("uniform",
        "fan_in_normal", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", ...).
    bias : {"per_layer", "input_column"}, default "per_layer"
        A bias vector per layer (the output layer's bias learns the class priors; scikit-learn's
        convention), or the seed report's constant input column (first layer only).
    solver : {"sgd", "adam", "adamw", "rmsprop"}, default "sgd"
        The optimizer (:mod:`mlpkit.optim`); "adamw" decays the weights decoupled from the
        gradient (by ``alpha``). An option another solver uses must be left at its default.
    learning_rate_init : float, default 0.02
        The learning rate (the peak of a schedule).
    momentum : float, default 0.9
        Of "sgd" and "rmsprop", in [0, 1). SGD's heavy-ball rule: v <- g + momentum v;
        w <- w - lr v.
    nesterovs_momentum : bool, default False
        Nesterov momentum ("sgd", momentum > 0).
    alpha : float, default 0.0
        L2 weight decay, >= 0: added to the gradient ("sgd", "adam", "rmsprop"), decoupled
        ("adamw").
    beta_1, beta_2 : float, default 0.9, 0.999
        Adam's and AdamW's moment decay rates, in [0, 1).
    epsilon : float, default 1e-8
        The denominator's epsilon of "adam", "adamw" and "rmsprop", > 0.
    lr_schedule : str, default "constant"
        "constant", "step", "exponential", "cosine_warmup", "one_cycle" or
        "reduce_on_plateau" (:data:`mlpkit.optim.registry.SCHEDULES`). Lengths are in epochs:
        the schedule is sized at the first training call on its number of steps per epoch,
        and "cosine_warmup" and "one_cycle" last ``max_iter`` such epochs, then hold their
        last lr. With ``warm_start`` and ``partial_fit`` it continues across calls (for
        ``partial_fit``, an epoch is the first call's number of steps). "reduce_on_plateau"
        watches the validation loss of ``early_stopping`` (required; held in ``partial_fit``).
    warmup_epochs : float, default 0.0
        "cosine_warmup": the linear warm-up, in [0, max_iter).
    lr_step_epochs : int, default 10
        "step": epochs between two reductions.
    lr_gamma : float, default 0.1
        The factor of "step" (per reduction), "exponential" (per epoch) and
        "reduce_on_plateau" (per plateau), in (0, 1].
    min_lr : float, default 0.0
        The floor of "cosine_warmup" and "reduce_on_plateau".
    max_lr : float or None, default None
        "one_cycle": the peak (None: ``learning_rate_init``).
    plateau_patience : int, default 10
        "reduce_on_plateau": validation checks without improvement before a reduction.
    dropout : float, default 0.0
        Inverted dropout rate of the hidden units in training steps, in [0, 1).
    input_dropout : float, default 0.0
        Dropout rate of the input features, in [0, 1).
    max_norm : float or None, default None
        After each update, rescale every hidden unit's incoming weights to norm <= this.
    label_smoothing : float, default 0.0
        Of the cross-entropy's target, in [0, 1).
    clip_norm : float or None, default None
        Clip the gradients to this global L2 norm before each update.
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
        ``fit`` continues from the previous weights, optimizer and schedule state instead of
        starting over (the solver and schedule made by the first fit are kept).
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
        solver: str = "sgd",
        learning_rate_init: float = 0.02,
        momentum: float = 0.9,
        nesterovs_momentum: bool = False,
        alpha: float = 0.0,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        lr_schedule: str = "constant",
        warmup_epochs: float = 0.0,
        lr_step_epochs: int = 10,
        lr_gamma: float = 0.1,
        min_lr: float = 0.0,
        max_lr: float | None = None,
        plateau_patience: int = 10,
        dropout: float = 0.0,
        input_dropout: float = 0.0,
        max_norm: float | None = None,
        label_smoothing: float = 0.0,
        clip_norm: float | None = None,
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
        self.solver = solver
        self.learning_rate_init = learning_rate_init
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.alpha = alpha
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.lr_schedule = lr_schedule
        self.warmup_epochs = warmup_epochs
        self.lr_step_epochs = lr_step_epochs
        self.lr_gamma = lr_gamma
        self.min_lr = min_lr
        self.max_lr = max_lr
        self.plateau_patience = plateau_patience
        self.dropout = dropout
        self.input_dropout = input_dropout
        self.max_norm = max_norm
        self.label_smoothing = label_smoothing
        self.clip_norm = clip_norm
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
        options.check_training_params(self)

    def _validate_X(self, X: Any, *, reset: bool) -> np.ndarray:
        return _validate_data(self, X, reset=reset, dtype=[np.float64, np.float32])

    # ---------------------------------------------------------------- building
    def _rng(self) -> np.random.Generator:
        """A NumPy Generator: seeded by an int ``random_state`` directly, else by one draw from it."""
        if isinstance(self.random_state, (int, np.integer)) and not isinstance(self.random_state, bool):
            return np.random.default_rng(int(self.random_state))
        return np.random.default_rng(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def _build(self, n_features: int, classes: np.ndarray) -> None:
        """A fresh network, optimizer and generator; forgets what earlier fits learned. The
        schedule is made by the first ``_train``, which knows the steps per epoch."""
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
        self._optimizer_spec = options.optimizer_spec(self)
        self._optimizer = options.build_optimizer(self._optimizer_spec, self.model_.parameters())
        self._schedule_spec: options.Spec | None = None
        self._schedule: Schedule | None = None  # made by the first _train
        self._schedule_sized = False
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
        train_epochs(self, X, self._encode(y), int(self.max_iter), early_stopping=bool(self.early_stopping))
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
            if self.lr_schedule == "reduce_on_plateau":
                raise ValueError(
                    "lr_schedule='reduce_on_plateau' watches validation checks, which partial_fit does not run"
                )
        X, y = _validate_data(self, X, y, dtype=[np.float64, np.float32], reset=first)
        check_classification_targets(y)
        if first:
            self._build(X.shape[1], np.unique(np.asarray(classes)))
        elif classes is not None and not np.array_equal(np.unique(np.asarray(classes)), self.classes_):
            raise ValueError(
                f"classes {np.unique(classes).tolist()} differ from the first call's {self.classes_.tolist()}"
            )
        train_epochs(self, X, self._encode(y), 1, early_stopping=False)
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
        """Plain arrays and specs for the network, optimizer and schedule (`sklearn_pickle`)."""
        state = dict(super().__getstate__())  # scikit-learn may hand back self.__dict__ itself
        return pack_fitted(state)

    def __setstate__(self, state: dict[str, Any]) -> None:
        fitted = unpack_fitted(state)
        super().__setstate__(state)
        self.__dict__.update(fitted)
