"""Compile kernels in a second process while this one compiles others, through the on-disk cache.

Why: with an empty kernel cache, compiling the training kernel and its callees took several
times as long as the run itself, on one core. One process compiles one thing at a time, so on a
machine with a second core a helper process (``python -m mlpkit.engine.precompile``) compiles
``HELPER_CALLEES`` (if any), then the model's ``forward`` (``kernels.forward_kernel``) as a
C-callable kernel (with everything under it: the sparse product, the activations; see
:mod:`mlpkit.engine.entry_points`) and then ``evaluate_rows`` (:func:`helper_jobs`), while this
process compiles the other callees of ``train_steps``, the sparse-input helpers, ``train_steps``
itself (it calls ``forward`` through its address, so it needs only its signature) and the sparse
weight gradient. Each compiled kernel is written to the cache
(:mod:`mlpkit.engine.kernel_cache`); this process then loads ``forward`` from there before the
first step, and ``evaluate_rows`` before the first validation.

:func:`prestart` starts the helper as soon as the model dtype is known, before the data are
read (``mlpkit train``: ``workflows.experiment``); the planner takes it with :func:`start`.

Nothing here changes what is computed: a kernel loaded from the cache is the machine code the
same compiler made. Any failure (no second CPU, the helper cannot start, crashes, or is slow)
leaves this process compiling on its own, as without the helper. Only a cold cache starts it
(no entry for ``train_steps`` yet), so warm runs pay nothing.
"""

from __future__ import annotations

import atexit
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


def forward_signature(dtype: np.dtype, gemm: Routine) -> Any:
    """The signature ``kernels.forward`` is called with on dense-typed arguments (C-ordered inputs of
    ``dtype``, ``compiled.sparse_arguments(None, dtype)``: MNIST's sparse forms have the same types)."""
    from mlpkit.engine import entry_points

    t = _array_types(dtype)
    return entry_points.forward_signature(dtype, gemm, t["f2"], t["sp"])


#: ``train_steps``' callees the helper compiles first, before ``forward``; this process compiles the
#: others meanwhile, then ``train_steps``. A knob that balances the two processes' parts, set from
#: compile timelines of cold task3c runs (docs/NOTES.md, seventh and eighth parts): empty while
#: the helper's part was the longer one; these two again since ``narrow_forward`` and the
#: one-size vector loops shortened it (cold runs 6.23 -> 5.93 s, mean of six alternating pairs).
HELPER_CALLEES: tuple[str, ...] = ("softmax_xent", "backprop")


def training_callees(dtype: np.dtype, gemm: Routine) -> list[tuple[Any, tuple[Any, ...]]]:
    """``train_steps``' callees (``forward`` aside, which it calls through its address), with the
    argument types it calls them with.

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
        self,
        process: subprocess.Popen[bytes],
        dtype: np.dtype | None = None,
        gemm: Routine | None = None,
        evaluate: tuple[Any, ...] | None = None,
        forward: str = "forward",
    ) -> None:
        self._process = process
        self._dtype, self._gemm, self._evaluate, self._forward = dtype, gemm, evaluate, forward
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

    def matches(self, dtype: np.dtype, evaluate: tuple[Any, ...] | None, first_width: int) -> bool:
        """Whether this helper compiles what a run of ``dtype`` needs (``evaluate``: the argument
        types of its ``evaluate_rows``, None for none; ``first_width``: its first layer's units,
        which choose its ``forward``) and still runs or has finished well."""
        return (
            self._dtype == dtype
            and (evaluate is None or evaluate == self._evaluate)
            and self._forward == _forward_name(first_width)
            and (self._process.poll() in (None, 0))
        )

    def compile_training_callees(self) -> None:
        """This process's part: ``train_steps``' callees but ``HELPER_CALLEES`` (see
        :func:`training_callees`). Then ``wait_for_callees`` before compiling ``train_steps``,
        and ``wait_for("forward")`` before running it."""
        if self._dtype is not None and self._gemm is not None:
            for kernel, signature in training_callees(self._dtype, self._gemm):
                if kernel.py_func.__name__ not in HELPER_CALLEES:
                    kernel.compile(signature)

    def wait_for_callees(self) -> None:
        """Wait for the helper's part of ``train_steps``' callees (if it fails, compiling
        ``train_steps`` compiles them)."""
        for name in HELPER_CALLEES:
            self.wait_for(name)

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


def evaluate_signature(dtype: np.dtype, gemm: Routine) -> tuple[Any, ...]:
    """The argument types of ``evaluate_rows`` for C-ordered, writable chunks of ``dtype`` (those
    of ``CompiledEvaluation.argument_types``), known before a model or data exist."""
    from numba import typeof, types

    t = _array_types(dtype)
    forward = types.FunctionType(forward_signature(dtype, gemm))
    return (typeof(gemm), forward, t["f2"], t["sp"], t["int"], t["i1"], t["f1"], t["i2"], t["int"], t["f1"], t["f1"])


#: The helper started by :func:`prestart`, until :func:`start` takes it (or the process exits).
_early: Helper | None = None


def prestart(dtype: np.dtype | str, first_width: int) -> None:
    """Start the helper now, as soon as the model dtype and its first layer's units are known
    (before the data are read), with :func:`evaluate_signature`; :func:`start` then takes it.
    Nothing when it would not help (see :func:`start`)."""
    global _early
    if _early is None:
        from mlpkit.engine import cblas

        dtype = np.dtype(dtype)
        gemm = cblas.gemm(dtype.name)
        if gemm is not None:
            _early = _launch(dtype, gemm, evaluate_signature(dtype, gemm), first_width)
            if _early is not None:
                atexit.register(_early.close)  # never taken (the run failed first): stop it


def start(
    dtype: np.dtype, gemm: Routine, evaluate_signature: tuple[Any, ...] | None, first_width: int
) -> Helper | None:
    """A helper compiling ``HELPER_CALLEES``, the ``forward`` of a first layer of ``first_width``
    units and ``evaluate_rows`` for ``evaluate_signature`` (the one :func:`prestart` started, when
    it compiles the same), or None when it would not help: one CPU, a warm cache, or a helper
    that cannot start."""
    global _early
    early, _early = _early, None
    if early is not None:
        if early.matches(dtype, evaluate_signature, first_width):
            return early
        early.close()
    return _launch(dtype, gemm, evaluate_signature, first_width)


def _forward_name(first_width: int) -> str:
    from mlpkit.engine import kernels

    return str(kernels.forward_kernel(first_width).py_func.__name__)


#: A helper's job: a label it prints when done, and the kernels it compiles for it, each as
#: (module, function, argument types, whether as a C-callable entry point).
Job = tuple[str, list[tuple[str, str, tuple[Any, ...], bool]]]


def _job(label: str, kernels: list[tuple[Any, tuple[Any, ...]]], entry: bool = False) -> Job:
    return label, [(k.py_func.__module__, k.py_func.__name__, tuple(sig), entry) for k, sig in kernels]


def helper_jobs(dtype: np.dtype, gemm: Routine, evaluate: tuple[Any, ...] | None, first_width: int) -> list[Job]:
    """What the helper compiles, in order: ``HELPER_CALLEES``, ``forward`` and ``evaluate_rows``.
    (The sparse form's kernels, ~0.65 s, stay with this process: compiled there, the helper's
    part became the longer one by ~1.5 s once ``narrow_forward`` and the one-size vector loops
    had shortened this process's; docs/NOTES.md, eighth part.)"""
    from mlpkit.engine import kernels

    jobs = [
        _job(k.py_func.__name__, [(k, sig)])
        for k, sig in training_callees(dtype, gemm)
        if k.py_func.__name__ in HELPER_CALLEES
    ]
    jobs.append(_job("forward", [(kernels.forward_kernel(first_width), forward_signature(dtype, gemm).args)], True))
    if evaluate is not None:
        jobs.append(_job("evaluate_rows", [(kernels.evaluate_rows, evaluate)]))
    return jobs


def _launch(dtype: np.dtype, gemm: Routine, evaluate: tuple[Any, ...] | None, first_width: int) -> Helper | None:
    try:
        from mlpkit.engine import kernels

        if _cpus() < 2 or _is_cached(kernels.train_steps):
            return None
        jobs = helper_jobs(dtype, gemm, evaluate, first_width)
        process = subprocess.Popen(
            [sys.executable, "-m", "mlpkit.engine.precompile"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert process.stdin is not None
        process.stdin.write(pickle.dumps(jobs))
        process.stdin.close()
        return Helper(process, dtype, gemm, evaluate, _forward_name(first_width))
    except Exception:  # any failure: compile here, as without a helper
        return None


def _main() -> None:
    """The helper: compile each job's kernels read from stdin (see ``helper_jobs``); print its label."""
    import importlib

    from numba import types

    from mlpkit.engine import entry_points

    jobs: list[Job] = pickle.loads(sys.stdin.buffer.read())
    for label, kernels in jobs:
        for module, name, signature, entry in kernels:
            kernel = getattr(importlib.import_module(module), name)
            if entry:  # called through its address (see mlpkit.engine.entry_points)
                entry_points.entry_point(kernel, types.intp(*signature))
            else:
                kernel.compile(signature)
        print(label, flush=True)


if __name__ == "__main__":
    _main()
