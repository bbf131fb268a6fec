"""Optimizers: they own their state, and their step is plain arithmetic (the engines' reference)."""

from mlpkit.optim.sgd import SGD, sgd_momentum_update

__all__ = ["SGD", "sgd_momentum_update"]
