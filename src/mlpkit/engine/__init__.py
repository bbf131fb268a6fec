"""How training runs: step runners (NumPy reference, compiled), the evaluator, the planner
that chooses between them, kernels, the CBLAS binding, threads, sparse inputs, memory.

Importing this package is cheap: the names below load their modules on first use, and only
the compiled ones (kernels, cblas, sparse, simd) import Numba.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "ENGINES": "selection",
    "EnginePlan": "planner",
    "StepRunner": "planner",
    "check_engine": "selection",
    "plan_engine": "planner",
    "Evaluator": "evaluator",
    "EVAL_CHUNK": "evaluator",
    "NumpySteps": "numpy_steps",
    "CompiledSteps": "compiled",
    "CompiledEvaluation": "compiled",
    "why_not": "compiled",
    "BlasThreads": "threads",
    "WorkerPool": "threads",
    "blas_threads": "threads",
    "limit_blas_threads": "threads",
    "SparseRows": "sparse",
    "sparse_rows": "sparse",
}

__all__ = [
    "BlasThreads",
    "CompiledEvaluation",
    "CompiledSteps",
    "ENGINES",
    "EVAL_CHUNK",
    "EnginePlan",
    "Evaluator",
    "NumpySteps",
    "SparseRows",
    "StepRunner",
    "WorkerPool",
    "blas_threads",
    "check_engine",
    "limit_blas_threads",
    "plan_engine",
    "sparse_rows",
    "why_not",
]
assert sorted(__all__) == sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
