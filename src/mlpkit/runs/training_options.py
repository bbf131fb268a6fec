"""From a config to what training runs with: the optimizer, the schedules, the step options
(dropout, label smoothing, clipping, max-norm) and the augmentation; and the checks that a
config asks for nothing its optimizer, schedule or augmentation would ignore.

Why refuse an option that does not apply (``momentum`` with Adam, ``warmup_epochs`` with a step
schedule) rather than ignore it: a setting that silently does nothing is a run that is not
what its config says.
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from mlpkit.core.errors import ConfigError
from mlpkit.runs.config_schema import Config, DataConfig, TrainConfig

if TYPE_CHECKING:
    import numpy as np

    from mlpkit.data.augment import Augmentation
    from mlpkit.engine.step_options import StepOptions
    from mlpkit.optim.optimizer import Optimizer
    from mlpkit.optim.plateau import ReduceOnPlateau

__all__ = ["augmentation", "build_optimizer", "build_step_options", "check_training_options", "steps_per_epoch"]

#: train.* key -> the optimizers that use it
OPTIMIZER_KEYS = {
    "momentum": ("sgd", "rmsprop"),
    "nesterov": ("sgd",),
    "beta1": ("adam", "adamw"),
    "beta2": ("adam", "adamw"),
    "eps": ("adam", "adamw", "rmsprop"),
    "rms_alpha": ("rmsprop",),
}
#: train.* key -> the schedules that use it
SCHEDULE_KEYS = {
    "warmup_epochs": ("cosine_warmup",),
    "lr_step_epochs": ("step",),
    "lr_gamma": ("step", "exponential", "reduce_on_plateau"),
    "min_lr": ("cosine_warmup", "reduce_on_plateau"),
    "max_lr": ("one_cycle",),
    "plateau_patience": ("reduce_on_plateau",),
}
#: data.* key -> the transforms that use it (any transform: "")
AUGMENT_KEYS = {
    "augment_probability": "",
    "augment_shift": "affine",
    "augment_rotation": "affine",
    "augment_scale": "affine",
    "augment_shear": "affine",
    "elastic_alpha": "elastic",
    "elastic_sigma": "elastic",
}


def _unused(section: str, table: Any, default: Any, keys: dict[str, Any], uses: Any, what: str) -> None:
    for key, users in keys.items():
        if getattr(table, key) != getattr(default, key) and not uses(users):
            raise ConfigError(f"{section}.{key} = {getattr(table, key)!r} is not used by {what}; leave it out")


def check_training_options(cfg: Config) -> None:
    """Raise ConfigError (naming the key) for a bad or inapplicable training option."""
    from mlpkit.optim.registry import OPTIMIZERS, SCHEDULES

    m, d, t = cfg.model, cfg.data, cfg.train
    for key in ("dropout_input", "dropout_hidden"):
        if not 0 <= getattr(m, key) < 1:
            raise ConfigError(f"model.{key} must lie in [0, 1), got {getattr(m, key)}")
    for section, key, value in (("model", "max_norm", m.max_norm), ("train", "clip_norm", t.clip_norm)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ConfigError(f"{section}.{key} must be a number > 0 (or left out), got {value}")
    if not 0 <= t.label_smoothing < 1:
        raise ConfigError(f"train.label_smoothing must lie in [0, 1), got {t.label_smoothing}")
    if t.optimizer not in OPTIMIZERS:
        raise ConfigError(f"train.optimizer {t.optimizer!r} is unknown; valid: {', '.join(OPTIMIZERS)}")
    if t.schedule != "none" and t.schedule not in SCHEDULES:
        raise ConfigError(f"train.schedule {t.schedule!r} is unknown; valid: none, {', '.join(SCHEDULES)}")
    default = TrainConfig()
    _unused("train", t, default, OPTIMIZER_KEYS, lambda users: t.optimizer in users, f"optimizer {t.optimizer}")
    _unused("train", t, default, SCHEDULE_KEYS, lambda users: t.schedule in users, f"schedule {t.schedule}")
    if t.nesterov and not t.momentum:
        raise ConfigError("train.nesterov needs train.momentum > 0")
    if not (t.weight_decay >= 0 and math.isfinite(t.weight_decay)):
        raise ConfigError(f"train.weight_decay must be >= 0, got {t.weight_decay}")
    if t.warmup_epochs < 0 or t.warmup_epochs >= t.epochs:
        raise ConfigError(f"train.warmup_epochs must lie in [0, epochs = {t.epochs}), got {t.warmup_epochs}")
    if t.lr_step_epochs < 1 or t.plateau_patience < 0:
        raise ConfigError("train.lr_step_epochs must be >= 1 and train.plateau_patience >= 0")
    if not 0 < t.lr_gamma <= 1:
        raise ConfigError(f"train.lr_gamma must lie in (0, 1], got {t.lr_gamma}")
    if t.min_lr < 0 or (t.max_lr is not None and not (math.isfinite(t.max_lr) and t.max_lr > 0)):
        raise ConfigError("train.min_lr must be >= 0 and train.max_lr > 0")
    transforms = _transforms(d)
    _unused("data", d, DataConfig(), AUGMENT_KEYS, lambda user: transforms and (not user or user in transforms),
            f"augment {d.augment!r}")  # fmt: skip
    augmentation(d)  # the augmentation's own range checks


def _transforms(d: DataConfig) -> tuple[str, ...]:
    from mlpkit.data.augment import TRANSFORMS

    if d.augment == "none":
        return ()
    names = tuple(d.augment.split("+"))
    if not names or any(n not in TRANSFORMS for n in names) or len(set(names)) != len(names):
        raise ConfigError(
            f"data.augment {d.augment!r} is unknown; valid: none, or {' / '.join(TRANSFORMS)} joined by '+'"
        )
    return names


def augmentation(d: DataConfig) -> Augmentation | None:
    """The `Augmentation` ``[data]`` asks for (None for ``augment = "none"``)."""
    from mlpkit.data.augment import Augmentation

    transforms = _transforms(d)
    if not transforms:
        return None
    return Augmentation(
        transforms=transforms,
        probability=d.augment_probability,
        max_shift=d.augment_shift,
        max_rotation=d.augment_rotation,
        scale=(1 - d.augment_scale, 1 + d.augment_scale),
        max_shear=d.augment_shear,
        alpha=d.elastic_alpha,
        sigma=d.elastic_sigma,
    )


def build_optimizer(t: TrainConfig, params: list[np.ndarray]) -> Optimizer:
    """``[train]``'s optimizer over ``params`` (SGD exactly as the seed's when nothing else is set)."""
    from mlpkit.optim.registry import make_optimizer

    options: dict[str, Any] = {"lr": t.learning_rate}
    if t.optimizer == "sgd":
        options.update(momentum=t.momentum)
        if t.nesterov:
            options["nesterov"] = True
    elif t.optimizer in ("adam", "adamw"):
        options.update(betas=(t.beta1, t.beta2), eps=t.eps)
    else:
        options.update(alpha=t.rms_alpha, eps=t.eps, momentum=t.momentum)
    if t.weight_decay or t.optimizer == "adamw":
        options["weight_decay"] = t.weight_decay
    return make_optimizer(t.optimizer, params, **options)


def steps_per_epoch(n_train: int, t: TrainConfig) -> int:
    """Gradient steps an epoch, as the trainer counts them."""
    from mlpkit.train.loop_checks import epoch_steps

    return epoch_steps(n_train, t.batch_size, t.drop_last)


def build_step_options(
    cfg: Config, optimizer: Optimizer, *, n_train: int
) -> tuple[StepOptions, ReduceOnPlateau | None]:
    """The step options and (for ``reduce_on_plateau``) the plateau schedule of ``cfg``;
    schedule lengths in epochs become steps of a training set of ``n_train``."""
    from mlpkit.engine.step_options import StepOptions
    from mlpkit.nn.dropout import Dropout
    from mlpkit.optim.plateau import ReduceOnPlateau
    from mlpkit.optim.registry import make_schedule

    m, t = cfg.model, cfg.train
    spe = steps_per_epoch(n_train, t)
    total = spe * t.epochs
    schedule, plateau = None, None
    if t.schedule == "reduce_on_plateau":
        plateau = ReduceOnPlateau(optimizer, factor=t.lr_gamma, patience=t.plateau_patience, min_lr=t.min_lr)
    elif t.schedule == "step":
        schedule = make_schedule("step", optimizer, step_size=t.lr_step_epochs * spe, gamma=t.lr_gamma)
    elif t.schedule == "exponential":
        schedule = make_schedule("exponential", optimizer, gamma=t.lr_gamma ** (1 / spe))
    elif t.schedule == "cosine_warmup":
        warmup = round(t.warmup_epochs * spe)
        schedule = make_schedule("cosine_warmup", optimizer, warmup_steps=warmup, total_steps=total, min_lr=t.min_lr)
    elif t.schedule == "one_cycle":
        peak = t.max_lr if t.max_lr is not None else t.learning_rate
        schedule = make_schedule("one_cycle", optimizer, max_lr=peak, total_steps=total)
    dropout = Dropout(input_rate=m.dropout_input, hidden_rate=m.dropout_hidden)
    options = StepOptions(
        dropout=dropout if dropout.active else None,
        label_smoothing=t.label_smoothing,
        clip_norm=t.clip_norm,
        max_norm=m.max_norm,
        schedule=schedule,
    )
    return options, plateau


assert {f.name for f in fields(TrainConfig)} >= set(OPTIMIZER_KEYS) | set(SCHEDULE_KEYS)
