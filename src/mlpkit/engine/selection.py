"""Which engine a name selects: ``"auto"`` (compiled when it applies), ``"compiled"`` (required:
an error says why not) or ``"numpy"`` (never); ``MLPKIT_ENGINE=numpy`` turns ``"auto"`` into
``"numpy"``. The planner and the evaluator both ask here, so neither imports the other.
Importing this module does not import Numba.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from mlpkit.core.errors import ConfigError
from mlpkit.nn.mlp import MLP

if TYPE_CHECKING:  # pragma: no cover
    from mlpkit.engine.compiled import CompiledEvaluation, CompiledSteps
    from mlpkit.engine.option_steps import CompiledOptionSteps
    from mlpkit.engine.sparse import SparseRows
    from mlpkit.engine.step_options import StepOptions

__all__ = ["ENGINES", "ENV_VAR", "check_engine", "compiled_evaluation", "compiled_reason", "compiled_steps"]

ENGINES = ("auto", "compiled", "numpy")
#: Set to "numpy" to turn the compiled path off wherever the engine is "auto" (e.g. to compare).
ENV_VAR = "MLPKIT_ENGINE"


def check_engine(engine: str) -> str:
    """``engine`` if it is one of ``ENGINES``, else a ConfigError listing them."""
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}; valid: {', '.join(ENGINES)}")
    return engine


def _wants_compiled(engine: str) -> bool:
    engine = check_engine(engine)
    return engine == "compiled" or (engine == "auto" and os.environ.get(ENV_VAR, "").strip().lower() != "numpy")


def compiled_evaluation(engine: str, model: MLP) -> CompiledEvaluation | None:
    """A :class:`~mlpkit.engine.compiled.CompiledEvaluation` for ``model``, or None for NumPy."""
    if not _wants_compiled(engine):
        return None
    from mlpkit.engine.compiled import CompiledEvaluation, model_reason

    reason = model_reason(model)
    if reason is None:
        return CompiledEvaluation(model)
    if engine == "compiled":
        raise ConfigError(f"engine 'compiled' cannot evaluate this model: {reason}")
    return None


def compiled_steps(
    engine: str,
    model: MLP,
    optimizer: object,
    batch_size: int,
    x: np.ndarray,
    y: np.ndarray,
    sparse: SparseRows | None = None,
    options: StepOptions | None = None,
    rng: np.random.Generator | None = None,
    split: int = 1,
) -> CompiledSteps | CompiledOptionSteps | None:
    """Compiled steps for this fit, or None for NumPy (then `compiled_reason` says why): the
    seed's plain SGD step (:class:`~mlpkit.engine.compiled.CompiledSteps`) when nothing else is
    asked for, else :class:`~mlpkit.engine.option_steps.CompiledOptionSteps` (``rng``: the
    training loop's generator, which dropout draws from; ``split``: threads for the sparse first
    layer, see :mod:`mlpkit.engine.split_kernels`)."""
    if not _wants_compiled(engine):
        return None
    from mlpkit.engine.compiled import CompiledSteps, plain_sgd
    from mlpkit.engine.option_steps import CompiledOptionSteps
    from mlpkit.optim.adam import Adam
    from mlpkit.optim.sgd import SGD

    reason = compiled_reason(model, optimizer, batch_size, x, options)
    if reason is None:
        if plain_sgd(optimizer) and (options is None or not options.active):
            return CompiledSteps(model, optimizer, batch_size, x, y, sparse, split)  # type: ignore[arg-type]
        from mlpkit.engine.step_options import StepOptions

        assert isinstance(optimizer, SGD | Adam)  # compiled_reason checked it
        return CompiledOptionSteps(model, optimizer, batch_size, x, y, sparse, options or StepOptions(), rng, split)
    if engine == "compiled":
        raise ConfigError(f"engine 'compiled' cannot train this run: {reason}")
    return None


def compiled_reason(
    model: MLP, optimizer: object, batch_size: int, x: np.ndarray, options: StepOptions | None = None
) -> str | None:
    """Why the compiled steps cannot train this fit (None: they can)."""
    from mlpkit.engine.compiled import why_not

    if options is not None and (reason := options.compiled_reason()):
        return reason
    return why_not(model, optimizer, batch_size, x)
