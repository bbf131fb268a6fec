"""What ``MLPClassifier`` trains with besides the network: its optimizer, its learning-rate
schedule and its step options (dropout, label smoothing, clipping, max-norm), from the
estimator's parameters; their checks, one ValueError naming the estimator's parameter.

The optimizer and the schedule are described by a *spec*, the name and keyword options given
to :mod:`mlpkit.optim.registry`: plain data that pickles as it is, so that a pickled estimator
can rebuild both over the restored network's parameters (one flat buffer) and load their
state. The mapping follows the config's (`mlpkit.runs.training_options`): schedule lengths
in epochs become steps of the training set the schedule is sized on.

Why refuse a non-default value of an option the chosen solver or schedule does not use
(``beta_1`` with SGD, ``warmup_epochs`` with a step schedule) rather than ignore it, as the
config does: a setting that silently does nothing is a model that is not what its parameters
say. Values left at their defaults are not refused (``momentum`` stays 0.9 under Adam).
"""

from __future__ import annotations

import inspect
from typing import Any

from mlpkit.core.errors import ConfigError
from mlpkit.engine.step_options import StepOptions
from mlpkit.nn.dropout import Dropout
from mlpkit.optim import hyperparameters as hp
from mlpkit.optim.optimizer import Optimizer
from mlpkit.optim.registry import OPTIMIZERS, SCHEDULES, make_optimizer, make_schedule
from mlpkit.optim.schedules import Schedule

__all__ = [
    "LR_SCHEDULES",
    "SOLVERS",
    "Spec",
    "build_optimizer",
    "build_schedule",
    "check_training_params",
    "optimizer_spec",
    "schedule_spec",
    "step_options",
]

#: A name and the keyword options of `mlpkit.optim.registry.make_optimizer` / `make_schedule`.
Spec = tuple[str, dict[str, Any]]

SOLVERS = tuple(OPTIMIZERS)
LR_SCHEDULES = ("constant", *SCHEDULES)

#: estimator parameter -> the solvers that use it
SOLVER_PARAMS = {
    "momentum": ("sgd", "rmsprop"),
    "nesterovs_momentum": ("sgd",),
    "beta_1": ("adam", "adamw"),
    "beta_2": ("adam", "adamw"),
    "epsilon": ("adam", "adamw", "rmsprop"),
}
#: estimator parameter -> the learning-rate schedules that use it
SCHEDULE_PARAMS = {
    "warmup_epochs": ("cosine_warmup",),
    "lr_step_epochs": ("step",),
    "lr_gamma": ("step", "exponential", "reduce_on_plateau"),
    "min_lr": ("cosine_warmup", "reduce_on_plateau"),
    "max_lr": ("one_cycle",),
    "plateau_patience": ("reduce_on_plateau",),
}


def _defaults(est: Any) -> dict[str, Any]:
    return {p.name: p.default for p in inspect.signature(type(est)).parameters.values()}


def _optional_positive(value: Any, name: str) -> None:
    if value is not None:
        hp.positive(value, name)


def check_training_params(est: Any) -> None:
    """Raise ValueError (a ConfigError) naming the parameter for a bad or unused training option.

    Parameters
    ----------
    est : MLPClassifier
        Read for ``solver``, ``lr_schedule`` and their options, the regularization options,
        ``learning_rate_init``, ``max_iter`` and ``early_stopping``.

    Raises
    ------
    ConfigError
        A value out of range, an unknown solver or schedule, or a non-default value of an
        option the chosen solver or schedule does not use.
    """
    solver = hp.choice(est.solver, "solver", SOLVERS)
    schedule = hp.choice(est.lr_schedule, "lr_schedule", LR_SCHEDULES)
    defaults = _defaults(est)
    for table, chosen, what in ((SOLVER_PARAMS, solver, "solver"), (SCHEDULE_PARAMS, schedule, "lr_schedule")):
        for name, users in table.items():
            value = getattr(est, name)
            if chosen not in users and not (value is defaults[name] or value == defaults[name]):
                raise ConfigError(
                    f"{name}={value!r} is not used by {what}={chosen!r} (only by {', '.join(users)});"
                    " leave it at its default"
                )
    hp.unit_interval(est.momentum, "momentum")
    if not isinstance(est.nesterovs_momentum, bool):
        raise ConfigError(f"nesterovs_momentum must be True or False, got {est.nesterovs_momentum!r}")
    if est.nesterovs_momentum and not est.momentum:
        raise ConfigError("nesterovs_momentum needs momentum > 0")
    hp.non_negative(est.alpha, "alpha")
    hp.unit_interval(est.beta_1, "beta_1")
    hp.unit_interval(est.beta_2, "beta_2")
    hp.positive(est.epsilon, "epsilon")
    if hp.non_negative(est.warmup_epochs, "warmup_epochs") >= est.max_iter:
        raise ConfigError(f"warmup_epochs must be below max_iter = {est.max_iter}, got {est.warmup_epochs}")
    hp.count(est.lr_step_epochs, "lr_step_epochs")
    hp.unit_interval(est.lr_gamma, "lr_gamma", closed_low=False, closed_high=schedule != "reduce_on_plateau")
    if hp.non_negative(est.min_lr, "min_lr") > est.learning_rate_init and schedule == "cosine_warmup":
        raise ConfigError(f"min_lr must be at most learning_rate_init = {est.learning_rate_init}, got {est.min_lr}")
    _optional_positive(est.max_lr, "max_lr")
    hp.count(est.plateau_patience, "plateau_patience", minimum=0)
    if schedule == "reduce_on_plateau" and not est.early_stopping:
        raise ConfigError(
            "lr_schedule='reduce_on_plateau' is stepped at validation checks: it needs early_stopping=True"
        )
    for name in ("dropout", "input_dropout", "label_smoothing"):
        hp.unit_interval(getattr(est, name), name)
    _optional_positive(est.max_norm, "max_norm")
    _optional_positive(est.clip_norm, "clip_norm")


def optimizer_spec(est: Any) -> Spec:
    """The optimizer of ``est``'s parameters (checked), as `mlpkit.runs.training_options` makes
    it from a config: plain SGD with momentum, as before these options, when nothing else is set."""
    solver = est.solver
    options: dict[str, Any] = {"lr": est.learning_rate_init}
    if solver == "sgd":
        options["momentum"] = est.momentum
        if est.nesterovs_momentum:
            options["nesterov"] = True
    elif solver in ("adam", "adamw"):
        options.update(betas=(est.beta_1, est.beta_2), eps=est.epsilon)
    else:
        options.update(eps=est.epsilon, momentum=est.momentum)
    if est.alpha or solver == "adamw":
        options["weight_decay"] = est.alpha
    return solver, options


def schedule_spec(est: Any, steps_per_epoch: int) -> Spec | None:
    """The learning-rate schedule of ``est``'s parameters (checked), lengths in epochs of
    ``steps_per_epoch`` steps; None for ``lr_schedule="constant"``."""
    name, spe = est.lr_schedule, int(steps_per_epoch)
    total = spe * int(est.max_iter)
    if name == "constant":
        return None
    if name == "reduce_on_plateau":
        return name, {"factor": est.lr_gamma, "patience": est.plateau_patience, "min_lr": est.min_lr}
    if name == "step":
        return name, {"step_size": est.lr_step_epochs * spe, "gamma": est.lr_gamma}
    if name == "exponential":
        return name, {"gamma": est.lr_gamma ** (1 / spe)}
    if name == "cosine_warmup":
        return name, {"warmup_steps": round(est.warmup_epochs * spe), "total_steps": total, "min_lr": est.min_lr}
    peak = est.max_lr if est.max_lr is not None else est.learning_rate_init
    return name, {"max_lr": peak, "total_steps": total}  # one_cycle


def build_optimizer(spec: Spec, params: list[Any]) -> Optimizer:
    """The optimizer ``spec`` describes, over ``params``."""
    name, options = spec
    return make_optimizer(name, params, **options)


def build_schedule(spec: Spec | None, optimizer: Optimizer) -> Schedule | None:
    """The schedule ``spec`` describes, driving ``optimizer`` (made while its lr is the base lr)."""
    if spec is None:
        return None
    name, options = spec
    try:
        return make_schedule(name, optimizer, **options)
    except ConfigError as exc:  # e.g. one_cycle over too few steps: name the estimator's parameter
        raise ConfigError(f"lr_schedule={name!r}: {exc}") from None


def step_options(est: Any, schedule: Schedule | None) -> StepOptions:
    """Dropout, label smoothing, clipping and max-norm of ``est``, with a per-step ``schedule``
    (a plateau schedule goes to the trainer's ``plateau`` instead)."""
    dropout = Dropout(input_rate=float(est.input_dropout), hidden_rate=float(est.dropout))
    return StepOptions(
        dropout=dropout if dropout.active else None,
        label_smoothing=float(est.label_smoothing),
        clip_norm=None if est.clip_norm is None else float(est.clip_norm),
        max_norm=None if est.max_norm is None else float(est.max_norm),
        schedule=None if schedule is None or schedule.needs_metric else schedule,
    )
