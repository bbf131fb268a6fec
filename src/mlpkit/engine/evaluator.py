"""Mean loss and accuracy over whole datasets, as a few large matrix products per chunk of rows."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from mlpkit.engine.selection import compiled_evaluation
from mlpkit.engine.threads import BlasThreads, WorkerPool
from mlpkit.nn.losses import cross_entropy_sum_and_hits
from mlpkit.nn.mlp import MLP
from mlpkit.nn.workspace import Workspace

if TYPE_CHECKING:  # pragma: no cover
    from mlpkit.engine.compiled import CompiledEvaluation
    from mlpkit.engine.precompile import Helper
    from mlpkit.engine.sparse import SparseRows

#: Rows per validation chunk: one matrix product per layer and chunk, outputs that stay in cache.
EVAL_CHUNK = 2048


class Evaluator:
    """Mean loss and accuracy over a dataset, in chunks of rows, on several threads.

    Each chunk is one matrix product per layer plus a few vectorized passes over its logits
    (or one compiled call, see :class:`mlpkit.engine.compiled.CompiledEvaluation`). The
    calling thread and ``workers - 1`` pool threads each own a workspace, run BLAS on one
    thread, and take the next chunk when done with one: a core that another process holds
    slows the pass down instead of stalling it, as a static split between BLAS threads does.
    Chunk results are added in chunk order, so the numbers are those of
    ``model.evaluate(x, y, model.workspace(chunk))`` whichever thread computed what.

    Parameters
    ----------
    model : MLP
        The model to evaluate (its current weights, at every call).
    max_rows : int
        The largest dataset it will see (chunks are never larger).
    chunk : int, optional
        Rows per chunk (default ``EVAL_CHUNK``).
    workers : int, optional
        Threads that share the chunks; default: the BLAS thread limit in force at
        construction (``--threads``).
    engine : {"auto", "compiled", "numpy"}, default "auto"
        Whether chunks run in compiled code (see :mod:`mlpkit.engine.planner`).

    Raises
    ------
    ConfigError
        ``engine="compiled"`` for a model the kernels cannot compute, or an unknown engine.
    """

    def __init__(
        self, model: MLP, *, max_rows: int, chunk: int | None = None, workers: int | None = None, engine: str = "auto"
    ) -> None:
        self.model = model
        self.chunk = max(1, min(chunk or EVAL_CHUNK, max_rows))
        self._blas_threads = BlasThreads()
        workers = self._blas_threads.threads() if workers is None else workers
        self.workspaces = [model.workspace(self.chunk) for _ in range(max(1, workers))]
        self.pool = WorkerPool(len(self.workspaces))
        # the compiled chunk evaluation, when it applies; one scratch buffer per worker
        self._compiled: CompiledEvaluation | None = compiled_evaluation(engine, model)
        self._scratch = {id(ws): self._compiled.scratch() for ws in self.workspaces} if self._compiled else {}
        self._sparse: dict[int, tuple[np.ndarray, SparseRows]] = {}
        self._helper: Helper | None = None

    def compiled_by(self, helper: Helper) -> None:
        """Before the first compiled chunk, wait for ``helper`` to cache the chunk kernel
        (see mlpkit.engine.precompile) rather than compile it here."""
        self._helper = helper

    @property
    def compiled_evaluation(self) -> CompiledEvaluation | None:
        """The compiled chunk evaluation, if chunks run in compiled code."""
        return self._compiled

    @property
    def compiled(self) -> bool:
        """Whether chunks are evaluated in compiled code (see mlpkit.engine.compiled)."""
        return self._compiled is not None

    def use_sparse(self, x: np.ndarray, sparse: SparseRows | None) -> None:
        """From now on, chunks of ``x`` (this very array, which must not change) are computed
        from its sparse form (see mlpkit.engine.sparse); None forgets it."""
        if sparse is None:
            self._sparse.pop(id(x), None)
        elif self._compiled is not None:
            if sparse.shape != x.shape:
                raise ValueError(f"sparse inputs of shape {sparse.shape} for inputs of shape {x.shape}")
            self._sparse[id(x)] = (x, sparse)

    def sparse_of(self, x: np.ndarray) -> SparseRows | None:
        """The sparse form registered for this very array, if any."""
        held = self._sparse.get(id(x))
        return held[1] if held is not None and held[0] is x else None

    def _chunk(
        self, x: np.ndarray, y: np.ndarray, ws: Workspace, sparse: SparseRows | None = None, row0: int = 0
    ) -> tuple[float, int]:
        """(summed loss, hits) of one chunk, computed in ``ws`` (or its compiled scratch; from
        ``sparse`` rows ``row0 ..`` when given)."""
        if self._compiled is not None and self._compiled.accepts(x, y):
            return self._compiled(x, y, self._scratch[id(ws)], sparse, row0)
        return cross_entropy_sum_and_hits(self.model.forward(x, ws), y, scratch=ws.loss)

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """(mean cross-entropy, accuracy) of prepared inputs ``x`` and integer labels ``y``."""
        return self.evaluate_many([(x, y)])[0]

    def evaluate_many(self, datasets: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[tuple[float, float]]:
        """``evaluate`` for several datasets as one job: the workers share all their chunks,
        so none waits at the end of a dataset (validation: the validation and training sets)."""
        if self.pool.workers == 1 and self._compiled is None:
            return [self.model.evaluate(x, y, self.workspaces[0]) for x, y in datasets]
        if self._helper is not None:
            self._helper.wait_for("evaluate_rows")
            self._helper = None
        datasets = [(x, np.ascontiguousarray(y, dtype=np.intp)) for x, y in datasets]  # as the kernel takes them
        sparse = [self.sparse_of(x) for x, _ in datasets]
        chunk, evaluate_chunk = self.chunk, self._chunk
        jobs: list[tuple[int, int]] = []  # (dataset index, first row) of every chunk, datasets one after the other
        for d, (x, _) in enumerate(datasets):
            jobs.extend((d, s) for s in range(0, len(x), chunk))
        results: list[tuple[float, int]] = [(0.0, 0)] * len(jobs)
        tickets = itertools.count()  # next() on it is atomic under the GIL

        def work(ws: Workspace) -> None:
            while (j := next(tickets)) < len(jobs):
                d, s = jobs[j]
                x, y = datasets[d]
                results[j] = evaluate_chunk(x[s : s + chunk], y[s : s + chunk], ws, sparse[d], s)

        with self._blas_threads.limit(1):
            self.pool.run_each(work, self.workspaces[: self.pool.workers])
        totals = [[0.0, 0] for _ in datasets]
        for (d, _), (loss_sum, hits) in zip(jobs, results):  # in chunk order, as model.evaluate adds
            totals[d][0] += loss_sum
            totals[d][1] += hits
        return [(loss / len(x), hits / len(x)) for (loss, hits), (x, _) in zip(totals, datasets)]

    def close(self) -> None:
        """Forget the sparse forms and stop the worker threads."""
        self._sparse.clear()
        self.pool.close()

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
