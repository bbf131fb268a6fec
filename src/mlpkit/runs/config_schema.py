"""The typed sections of a run configuration and their defaults (frozen dataclasses).

Reading, writing and overriding configs lives in :mod:`mlpkit.runs.config`; range checks in
:mod:`mlpkit.runs.validation`. Both import these types, so neither imports the other.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SECTIONS", "Config", "DataConfig", "ModelConfig", "TrainConfig"]


@dataclass(frozen=True)
class ModelConfig:
    """The ``[model]`` table.

    Parameters
    ----------
    hidden : tuple of int
        Hidden layer sizes, input side first: ``(64,)`` is one hidden layer of 64 units.
    activation : str
        Hidden activation, a name in `mlpkit.nn.activations.ACTIVATIONS`.
    init : str
        Weight initializer, a name in `mlpkit.nn.initializers.INITIALIZERS`.
    bias : str
        ``"per_layer"`` (a bias vector per layer, the modern default) or ``"input_column"`` (the
        seed's trick: a column of ones on the inputs; every seed preset names it).
    dropout_input, dropout_hidden : float
        Inverted dropout rates of the inputs and of every hidden layer, in [0, 1).
    max_norm : float or None
        Rescale each hidden unit's incoming weights to norm <= this after every step.
    """

    hidden: tuple[int, ...] = (64,)
    activation: str = "sigmoid"
    init: str = "uniform"
    bias: str = "per_layer"
    dropout_input: float = 0.0
    dropout_hidden: float = 0.0
    max_norm: float | None = None


@dataclass(frozen=True)
class DataConfig:
    """The ``[data]`` table.

    Parameters
    ----------
    dataset : str
        A registered name (``mnist``, ``fashion-mnist``, ``kmnist``, ``digits``) or the path of
        the user's own data: ``.npz``, ``.csv``, a folder of images (one subfolder per class) or
        an IDX images file (see `mlpkit.data.registry.load_dataset`).
    split : str
        ``"seed"``, ``"full"``, ``"holdout"`` or ``"given"`` (see `mlpkit.data.splits.make_split`).
    n_train, n_val : int or None
        Training and validation set sizes; None for the split's default.
    val_fraction : float
        The share of the training part ``holdout`` validates on.
    validation : str or None
        ``given``'s validation file (same kind as ``dataset``).
    test : str or None
        A test file for the user's own data; without one a test part is carved off.
    test_fraction : float
        The share carved off as the test part of data that has none (0: none).
    normalization : str
        ``"global"`` (one mean/std, the seed's), ``"per_feature"`` or ``"none"``.
    label_column : str
        The label column of a CSV file.
    labels : str or None
        The labels file of an IDX images file (default: its name with images -> labels).
    shuffle : bool
        Reshuffle the training set every epoch.
    augment : str
        ``"none"``, or the transforms applied on the fly to every training image each epoch,
        joined by ``+``: ``"affine"``, ``"elastic"``, ``"affine+elastic"``.
    augment_probability, augment_shift, augment_rotation, augment_scale, augment_shear : float
        Per-image probability; the largest shift (pixels), rotation and shear (degrees); the
        largest relative change of scale (0.1: 0.9 to 1.1).
    elastic_alpha, elastic_sigma : float
        Simard's elastic distortion: displacement scale and Gaussian smoothing (pixels).
    """

    dataset: str = "mnist"
    split: str = "seed"
    n_train: int | None = None  # None: the split's default (20,000 for "seed")
    n_val: int | None = None
    val_fraction: float = 0.1
    validation: str | None = None
    test: str | None = None
    test_fraction: float = 0.2
    normalization: str = "global"
    label_column: str = "label"
    labels: str | None = None
    shuffle: bool = True
    augment: str = "none"
    augment_probability: float = 1.0
    augment_shift: float = 2.0
    augment_rotation: float = 15.0
    augment_scale: float = 0.1
    augment_shear: float = 10.0
    elastic_alpha: float = 36.0
    elastic_sigma: float = 5.0


@dataclass(frozen=True)
class TrainConfig:
    """The ``[train]`` table.

    Parameters
    ----------
    epochs : int
        Passes over the training set.
    batch_size : int
        Samples per gradient step.
    learning_rate : float
        The (base) learning rate.
    optimizer : str
        ``"sgd"`` (the seed's momentum rule), ``"adam"``, ``"adamw"`` or ``"rmsprop"``.
    momentum : float
        Of SGD and RMSprop, in [0, 1).
    nesterov : bool
        Nesterov momentum (SGD).
    weight_decay : float
        L2 weight decay: added to the gradient (SGD, Adam, RMSprop), decoupled (AdamW).
    beta1, beta2, eps : float
        Adam's and AdamW's moment decay rates; the denominator's epsilon (also RMSprop's).
    rms_alpha : float
        RMSprop's decay rate of the squared gradients.
    schedule : str
        ``"none"``, ``"step"``, ``"exponential"``, ``"cosine_warmup"``, ``"one_cycle"`` or
        ``"reduce_on_plateau"`` (`mlpkit.optim.registry.SCHEDULES`); set in epochs, stepped
        after every step (the plateau schedule at every validation check).
    warmup_epochs : float
        Linear warm-up of ``cosine_warmup``.
    lr_step_epochs : int
        ``step``: epochs between two reductions.
    lr_gamma : float
        The factor of ``step`` (per reduction), ``exponential`` (per epoch) and
        ``reduce_on_plateau`` (per plateau).
    min_lr : float
        The floor of ``cosine_warmup`` and ``reduce_on_plateau``.
    max_lr : float or None
        ``one_cycle``'s peak (None: ``learning_rate``).
    plateau_patience : int
        ``reduce_on_plateau``: validation checks without improvement before a reduction.
    label_smoothing : float
        Of the cross-entropy's target, in [0, 1).
    clip_norm : float or None
        Clip the gradients to this global L2 norm before every update.
    drop_last : bool
        Skip the last, smaller batch of an epoch.
    validations_per_epoch : int
        Validate every ``steps_per_epoch // validations_per_epoch`` steps.
    early_stopping_patience : int
        Validation checks without improvement before stopping; 0 disables early stopping.
    early_stopping_min_delta : float
        Smallest decrease of the validation loss that counts as an improvement.
    restore_best_weights : bool
        On an early stop, go back to the weights of the best validation check.
    dtype : str
        ``"float32"`` or ``"float64"``.
    threads : int or None
        BLAS thread limit; None leaves the library's own choice.
    checkpoint_every : int
        Validation checks between checkpoints; 0: never.
    engine : str
        ``"auto"`` (compiled steps where they apply), ``"compiled"`` or ``"numpy"``.
    sparse_inputs : bool
        Let the compiled engine treat mostly-blank inputs as sparse (see `mlpkit.engine.sparse`).
    """

    epochs: int = 50
    batch_size: int = 32
    learning_rate: float = 0.1
    momentum: float = 0.0
    optimizer: str = "sgd"
    nesterov: bool = False
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    rms_alpha: float = 0.99
    schedule: str = "none"
    warmup_epochs: float = 0.0
    lr_step_epochs: int = 10
    lr_gamma: float = 0.1
    min_lr: float = 0.0
    max_lr: float | None = None
    plateau_patience: int = 10
    label_smoothing: float = 0.0
    clip_norm: float | None = None
    drop_last: bool = True
    validations_per_epoch: int = 5  # validate every steps_per_epoch // this many steps
    early_stopping_patience: int = 50  # in validation checks; 0 disables
    early_stopping_min_delta: float = 0.0
    restore_best_weights: bool = False
    dtype: str = "float32"
    threads: int | None = None
    checkpoint_every: int = 5  # validation checks between checkpoints; 0: never
    engine: str = "auto"  # "auto": compiled steps where they apply; "compiled"; "numpy" (see mlpkit.engine.compiled)
    sparse_inputs: bool = True  # compiled engine: mostly-blank inputs go sparse (see mlpkit.engine.sparse)


@dataclass(frozen=True)
class Config:
    """A whole run configuration, frozen; build it with `from_dict`, `parse_config` or `load_config`.

    Parameters
    ----------
    name : str
        Names the run (and its folder).
    description : str
        One line for listings.
    seed : int
        Seeds the one random generator of the run (initialization and shuffling).
    model, data, train : ModelConfig, DataConfig, TrainConfig
        The three tables.
    """

    name: str = "custom"
    description: str = ""
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        """Nested plain dicts (lists for tuples), as `from_dict` takes them."""
        out = dataclasses.asdict(self)
        out["model"]["hidden"] = list(self.model.hidden)
        return out


SECTIONS = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig}
