"""How training runs: step runners (NumPy reference, compiled), the evaluator, the planner
that chooses between them, kernels, the CBLAS binding, threads, sparse inputs, memory.

Importing this package is cheap: the names below load their modules on first use, and only
the compiled ones (kernels, cblas, sparse, simd) import Numba.
"""

from __future__ import annotations

from mlpkit.core.lazy import lazy_exports

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
    "CompiledOptionSteps": "option_steps",
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
    "CompiledOptionSteps",
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

__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
