"""Compile kernels in a second process while this one compiles others, through the on-disk cache.

Why: with an empty kernel cache, compiling the training kernel and its callees took several
times as long as the run itself, on one core. Numba compiles a kernel's callees one after the
other while it types it, and one process compiles one thing at a time, so on a machine with a
second core a helper process (``python -m mlpkit.engine.precompile``) compiles ``forward``
(with everything under it: the sparse product, the activations) and then ``evaluate_rows``,
while this process compiles the sparse-input helpers and the training kernel's other callees
(:func:`training_callees`). Each compiled kernel is written to the cache
(:mod:`mlpkit.engine.kernel_cache`); when this process then compiles ``train_steps`` it loads
``forward`` from there, and the first validation loads ``evaluate_rows``.

Nothing here changes what is computed: a kernel loaded from the cache is the machine code the
same compiler made. Any failure (no second CPU, the helper cannot start, crashes, or is slow)
leaves this process compiling on its own, as without the helper. Only a cold cache starts it
(no entry for ``train_steps`` yet), so warm runs pay nothing.
"""

from __future__ import annotations

import os
import pickle
import queue
import subprocess
import sys
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from mlpkit.engine.cblas import Routine

#: The most seconds this process waits for one kernel from the helper before compiling it itself.
WAIT_S = 60.0


def _array_types(dtype: np.dtype) -> dict[str, Any]:
    """Numba types of the arrays and scalars the kernels pass each other, in the model dtype."""
    from numba import typeof, types

    from mlpkit.engine.compiled import sparse_arguments

    return {
        "f1": typeof(np.empty(0, dtype)),
        "f2": typeof(np.empty((0, 0), dtype)),
        "i1": typeof(np.empty(0, np.intp)),
        "i2": typeof(np.empty((0, 0), np.int64)),
        "sp": typeof(sparse_arguments(None, dtype)),
        "real": typeof(dtype.type(0)),
        "int": types.intp,
        "bool": types.boolean,
    }


def forward_signature(dtype: np.dtype, gemm: Routine) -> tuple[Any, ...]:
    """The argument types ``train_steps`` calls ``kernels.forward`` with."""
    from numba import typeof

    t = _array_types(dtype)
    f1, f2, i1, i2, n = t["f1"], t["f2"], t["i1"], t["i2"], t["int"]
    return (typeof(gemm), f2, t["sp"], i1, n, n, f1, i2, n, f1, f1)


def training_callees(dtype: np.dtype, gemm: Routine) -> list[tuple[Any, tuple[Any, ...]]]:
    """``train_steps``' callees other than ``forward``, with the argument types it calls them with.

    First the three small ones ``forward``'s subtree needs as well (``gemm_product``, ``tile``,
    ``gemm_update``): compiled here before the helper reaches them, it loads them.
    """
    from numba import typeof

    from mlpkit.engine import dense_kernels, sparse_kernels

    t = _array_types(dtype)
    f1, f2, i1, n, real, flag = t["f1"], t["f2"], t["i1"], t["int"], t["real"], t["bool"]
    return [
        (dense_kernels.gemm_product, (typeof(gemm), f2, f2, f2, flag, flag, f1)),
        (sparse_kernels.tile, (n, n, n)),
        (dense_kernels.gemm_update, (typeof(gemm), f2, f2, f2, flag, flag, real, real)),
        (dense_kernels.softmax_xent, (f2, i1, f2, f1, f1)),
        (dense_kernels.backprop, (f2, f2, n, f1)),
        (dense_kernels.bias_update, (f2, f1, f1, real, real)),
        (sparse_kernels.sparse_weight_gradient, (t["sp"], i1, n, f2, f1, n, n, n, real, real, f1)),
    ]


def _is_cached(dispatcher: Any) -> bool:
    """Whether the cache holds any entry of this kernel (then the run is not a cold start)."""
    cache = getattr(dispatcher, "_cache", None)
    index = getattr(getattr(cache, "_cache_file", None), "_index_path", None)
    return index is None or os.path.exists(index)


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class Helper:
    """The helper process and what it has reported done (see the module docstring)."""

    def __init__(
        self, process: subprocess.Popen[bytes], dtype: np.dtype | None = None, gemm: Routine | None = None
    ) -> None:
        self._process = process
        self._dtype, self._gemm = dtype, gemm
        self._done: set[str] = set()
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._failed = False
        threading.Thread(target=self._read, daemon=True, name="mlpkit-precompile").start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._lines.put(line.decode(errors="replace").strip())
        self._lines.put(None)  # end of output: the helper exited

    def wait_for(self, name: str, timeout: float = WAIT_S) -> bool:
        """Wait until the helper has written ``name`` to the cache; False if it will not."""
        while name not in self._done and not self._failed:
            try:
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                self._failed = True
                break
            if line is None:
                self._failed = True
            else:
                self._done.add(line)
        return name in self._done

    def compile_training_callees(self) -> None:
        """This process's part: ``train_steps``' callees other than ``forward`` (see
        :func:`training_callees`). Then ``wait_for("forward")`` before compiling ``train_steps``."""
        if self._dtype is not None and self._gemm is not None:
            for kernel, signature in training_callees(self._dtype, self._gemm):
                kernel.compile(signature)

    def close(self) -> None:
        """Stop the helper if it still runs (what it wrote stays valid; a half-written entry is
        a temporary file that is never read)."""
        if self._process.poll() is None:
            self._process.terminate()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover
            self._process.kill()
            self._process.wait()


def start(dtype: np.dtype, gemm: Routine, evaluate_signature: tuple[Any, ...] | None) -> Helper | None:
    """A helper compiling ``forward`` (and ``evaluate_rows`` for ``evaluate_signature``), or None
    when it would not help: one CPU, a warm cache, or a helper that cannot start."""
    try:
        from mlpkit.engine import kernels

        if _cpus() < 2 or _is_cached(kernels.train_steps):
            return None
        jobs = [("forward", forward_signature(dtype, gemm))]
        if evaluate_signature is not None:
            jobs.append(("evaluate_rows", evaluate_signature))
        process = subprocess.Popen(
            [sys.executable, "-m", "mlpkit.engine.precompile"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert process.stdin is not None
        process.stdin.write(pickle.dumps(jobs))
        process.stdin.close()
        return Helper(process, dtype, gemm)
    except Exception:  # any failure: compile here, as without a helper
        return None


def _main() -> None:
    """The helper: compile each (kernel name, argument types) read from stdin; print its name."""
    from mlpkit.engine import kernels

    jobs = pickle.loads(sys.stdin.buffer.read())
    for name, signature in jobs:
        getattr(kernels, name).compile(tuple(signature))
        print(name, flush=True)


if __name__ == "__main__":
    _main()
