"""Kernels that other kernels call through their address, each compiled (or loaded) once.

Why: when a Numba kernel calls another, Numba links the callee's code into the caller's and
optimizes and emits all of it again there. ``kernels.forward`` (the sparse first layer's vector
loops, every activation) is called by ``train_steps`` and ``evaluate_rows``: linked into each, it
cost each of them ~0.6 s more to compile on a cold cache, and ``train_steps`` could not even start
compiling before ``forward`` existed (docs/NOTES.md, "cold start"). Called through its address,
as a first-class C function like the BLAS routines of :mod:`mlpkit.engine.cblas`, ``forward`` is
compiled once, as a C-callable kernel with cache entries of its own (:func:`kernel_cache.entry_cache`),
and its callers compile without it: only its signature is part of their argument types.

``sparse_kernels.sparse_weight_gradient`` is called the same way by ``train_steps``: linked, it
cost ``train_steps`` ~0.35 s more, and it can now compile after ``train_steps``.

The machine code is the same either way. A C callback cannot pass an exception up (Numba's
wrapper prints it and returns 0), so ``forward`` returns where the logits start *plus one* and
the weight gradient returns 1: 0 means it failed (their only failure: no memory for a small
buffer), and the callers say so (``MemoryError``).
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any

import numpy as np

from mlpkit.engine import kernel_cache
from mlpkit.engine.cblas import Routine

_ENTRIES: dict[tuple[Any, Any], Routine] = {}
_LOCK = threading.Lock()


def forward_signature(dtype: np.dtype, gemm: Routine, x_type: Any, sp_type: Any) -> Any:
    """The signature ``train_steps`` and ``evaluate_rows`` call ``kernels.forward`` with, for inputs
    of Numba type ``x_type`` and sparse arguments of ``sp_type`` (``compiled.sparse_arguments``)."""
    from numba import typeof, types

    f1, i1 = typeof(np.empty(0, dtype)), typeof(np.empty(0, np.intp))
    layout, n = typeof(np.empty((0, 0), np.int64)), types.intp
    return n(typeof(gemm), x_type, sp_type, i1, n, n, f1, layout, n, f1, f1)


def gradient_signature(dtype: np.dtype, sp_type: Any) -> Any:
    """The signature ``train_steps`` calls ``sparse_kernels.sparse_weight_gradient`` with."""
    from numba import typeof, types

    f1, f2, i1 = typeof(np.empty(0, dtype)), typeof(np.empty((0, 0), dtype)), typeof(np.empty(0, np.intp))
    n, real = types.intp, typeof(dtype.type(0))
    return n(sp_type, i1, n, f2, f1, n, n, n, real, real, f1)


#: What a stand-in's address leads to: a C function that returns 0 ("failed") and ignores its
#: arguments (the caller cleans them up in the C calling conventions of the platforms Numba runs on).
_REFUSE = ctypes.CFUNCTYPE(ctypes.c_int64)(lambda: 0)
_REFUSE_ADDRESS = ctypes.cast(_REFUSE, ctypes.c_void_p).value or 0


def signature_value(signature: Any) -> Routine:
    """A stand-in of that type: to compile a caller before the callee exists, or to pass where the
    caller does not call it (called all the same, it returns 0, which the callers report as failed)."""
    return Routine(_REFUSE_ADDRESS, signature, _REFUSE)


def entry_point(kernel: Any, signature: Any) -> Routine:
    """``kernel`` (a ``kernel_jit`` function) compiled for ``signature`` as a C-callable function,
    or loaded from the cache; once per process and signature."""
    key = (kernel.py_func, signature)
    with _LOCK:
        found = _ENTRIES.get(key)
        if found is None:
            from numba.core.ccallback import CFunc

            options = {k: v for k, v in kernel.targetoptions.items() if k != "no_cfunc_wrapper"}
            compiled = CFunc(kernel.py_func, (signature.args, signature.return_type), locals={}, options=options)
            cache = kernel_cache.entry_cache(kernel.py_func)
            if cache is not None:
                compiled._cache = cache  # type: ignore[attr-defined]  # as CFunc.enable_caching, our locator
            compiled.compile()
            found = _ENTRIES[key] = Routine(int(compiled.address or 0), signature, compiled)
    return found
