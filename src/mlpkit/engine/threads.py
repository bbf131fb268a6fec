"""Threads, in one place: the BLAS library's thread limit and the engine's worker pools.

Why the engine cares: OpenBLAS's threads spin while they wait, so a small product on two
threads can be many times slower than on one when another process holds the other core.
The engine therefore runs small training steps on one BLAS thread and spreads independent
work (validation chunks, blocks of a large parameter update) over its own workers, each
running BLAS on one thread. Everything that reads or changes the BLAS thread count goes
through this module (threadpoolctl underneath).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any, TypeVar

T = TypeVar("T")


class BlasThreads:
    """The BLAS libraries loaded in this process: their thread limit, and a way to lower it."""

    def __init__(self) -> None:
        from threadpoolctl import ThreadpoolController

        self._libraries = ThreadpoolController().select(user_api="blas")

    def threads(self) -> int:
        """The thread limit in force now (the largest over the loaded BLAS libraries; 1 if none)."""
        return max([lib.num_threads for lib in self._libraries.lib_controllers] or [1])

    def limit(self, n: int) -> AbstractContextManager[Any]:
        """A context manager: at most ``n`` BLAS threads inside it (a no-op when already so)."""
        if self.threads() <= n:
            return contextlib.nullcontext()
        return self._libraries.limit(limits=n)


def blas_threads() -> int:
    """The BLAS thread limit in force now (``--threads``, ``train.threads``, or the library's own)."""
    return BlasThreads().threads()


@contextlib.contextmanager
def limit_blas_threads(n: int | None) -> Iterator[None]:
    """At most ``n`` BLAS threads inside the block (``n`` None or 0: leave the limit alone)."""
    if not n:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=n):
        yield


def blas_libraries() -> list[dict[str, Any]]:
    """threadpoolctl's description of each BLAS library loaded (path, version, threads, ...)."""
    from threadpoolctl import threadpool_info

    return [info for info in threadpool_info() if info.get("user_api") == "blas"]


class WorkerPool:
    """The calling thread plus ``workers - 1`` pool threads, for jobs that split into parts.

    :meth:`run_each` gives the first part to the calling thread and one other part to each
    pool thread, and returns when all are done (re-raising the first error). Whatever a part
    computes, it computes the same whichever thread runs it: callers make their parts
    independent and combine the results in a fixed order.
    """

    def __init__(self, workers: int) -> None:
        self.workers = max(1, int(workers))
        self._executor = ThreadPoolExecutor(self.workers - 1) if self.workers > 1 else None

    def run_each(self, fn: Callable[[T], object], parts: Sequence[T]) -> None:
        """``fn(part)`` for every part, at most ``workers`` of them, concurrently."""
        if len(parts) > self.workers:
            raise ValueError(f"{len(parts)} parts for {self.workers} workers")
        if not parts:
            return
        helpers = [self._executor.submit(fn, part) for part in parts[1:]] if self._executor else []
        try:
            fn(parts[0])
        finally:
            for helper in helpers:
                helper.result()

    def close(self) -> None:
        """Stop the pool threads (idempotent); the pool then runs everything on the caller."""
        if self._executor is not None:
            self._executor.shutdown()
            self._executor = None
        self.workers = 1
