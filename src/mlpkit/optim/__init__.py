"""Optimizers owning their state (SGD, Adam, AdamW, RMSprop), learning-rate schedules, and
gradient clipping; each step is plain NumPy arithmetic (the engines' reference)."""

from mlpkit.optim.adam import Adam, AdamW
from mlpkit.optim.clipping import clip_grad_norm, global_norm
from mlpkit.optim.optimizer import Optimizer
from mlpkit.optim.plateau import ReduceOnPlateau
from mlpkit.optim.registry import OPTIMIZERS, SCHEDULES, make_optimizer, make_schedule
from mlpkit.optim.rmsprop import RMSprop
from mlpkit.optim.schedules import CosineWithWarmup, ExponentialLR, OneCycle, Schedule, StepLR
from mlpkit.optim.sgd import SGD, sgd_momentum_update

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "SGD",
    "Adam",
    "AdamW",
    "CosineWithWarmup",
    "ExponentialLR",
    "OneCycle",
    "Optimizer",
    "RMSprop",
    "ReduceOnPlateau",
    "Schedule",
    "StepLR",
    "clip_grad_norm",
    "global_norm",
    "make_optimizer",
    "make_schedule",
    "sgd_momentum_update",
]
