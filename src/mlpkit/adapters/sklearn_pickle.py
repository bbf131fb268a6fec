"""How a fitted ``MLPClassifier`` pickles: its network, optimizer and schedule as plain arrays
and specs, rebuilt together on loading so that training continues bit-identically.

Why not pickle them as they are: the network's parameters are views of one flat buffer, which
pickle would bring back as separate copies no longer updated together, and the optimizer and
schedule hold references to those arrays and to each other. The specs
(`mlpkit.adapters.sklearn_options`) and the generator pickle as they are.
"""

from __future__ import annotations

from typing import Any

from mlpkit.adapters import sklearn_options as options
from mlpkit.nn.mlp import MLP

__all__ = ["pack_fitted", "unpack_fitted"]


def pack_fitted(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` (an estimator's ``__dict__`` copy, changed in place and returned) with the
    network, optimizer and schedule replaced by their specs and state dicts."""
    model = state.pop("model_", None)
    optimizer = state.pop("_optimizer", None)
    schedule = state.pop("_schedule", None)
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
        state["_schedule_state"] = schedule.state_dict() if schedule is not None else None
    return state


def unpack_fitted(state: dict[str, Any]) -> dict[str, Any]:
    """Take what `pack_fitted` added out of ``state`` (in place) and return the attributes it
    rebuilds: ``model_``, ``_optimizer`` and ``_schedule`` (none for an unfitted estimator)."""
    spec = state.pop("_model_spec", None)
    weights = state.pop("_model_weights", None)
    opt_state = state.pop("_optimizer_state", None)
    schedule_state = state.pop("_schedule_state", None)
    if spec is None:
        return {}
    spec = dict(spec)
    model = MLP(spec.pop("hidden"), **spec)
    model.load_state_dict(weights)
    fitted: dict[str, Any] = {"model_": model}
    if opt_state is not None:
        optimizer = options.build_optimizer(state["_optimizer_spec"], model.parameters())
        optimizer.load_state_dict(opt_state)
        # made while the optimizer's lr is the base lr, as at first; its state then sets the lr now
        schedule = options.build_schedule(state.get("_schedule_spec"), optimizer)
        if schedule is not None:
            schedule.load_state_dict(schedule_state)
        fitted.update(_optimizer=optimizer, _schedule=schedule)
    return fitted
