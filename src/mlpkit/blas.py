"""The CBLAS ``gemm`` of the BLAS library NumPy uses, as ctypes functions for compiled code.

Why NumPy's library: it is already loaded, its thread count is what ``--threads`` and
threadpoolctl control, and for the seed's small products it was measured faster than the
one SciPy bundles (which Numba's ``np.dot`` calls). Wheels of NumPy on Linux and Windows
bundle OpenBLAS with ``scipy_``-prefixed, 64-bit-integer symbols; other builds may expose
plain ``cblas_sgemm``. Every candidate is checked on a small product before it is used, and
when none is found :func:`gemm` returns None and training keeps to the NumPy path.
"""

from __future__ import annotations

import ctypes
import functools

import numpy as np

#: Symbol names to try, with the width of their integer arguments.
_CANDIDATES = (("scipy_cblas_{}gemm64_", ctypes.c_int64), ("cblas_{}gemm64_", ctypes.c_int64),
               ("cblas_{}gemm", ctypes.c_int))


def _blas_paths() -> list[str]:
    """Shared libraries of the BLAS NumPy loaded, NumPy's own first."""
    from threadpoolctl import threadpool_info

    np.linalg.inv(np.eye(2))  # make sure NumPy's BLAS is loaded
    paths = [info["filepath"] for info in threadpool_info() if info.get("user_api") == "blas"]
    return sorted(paths, key=lambda p: "numpy" not in p)


def _bind(lib: ctypes.CDLL, name: str, integer, real):
    fn = getattr(lib, name, None)
    if fn is None:
        return None
    enum, ptr = ctypes.c_int, ctypes.c_void_p
    fn.argtypes = [enum, enum, enum, integer, integer, integer, real, ptr, integer, ptr, integer, real, ptr, integer]
    fn.restype = None
    return fn


def _works(fn, dtype: np.dtype) -> bool:
    """Does ``fn`` compute a small row-major product (with a transpose) correctly?"""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((5, 3)).astype(dtype), rng.standard_normal((5, 4)).astype(dtype)
    c = np.full((3, 4), np.nan, dtype=dtype)
    fn(101, 112, 111, 3, 4, 5, 1.0, a.ctypes.data, 3, b.ctypes.data, 4, 0.0, c.ctypes.data, 4)
    return bool(np.allclose(c, a.T @ b, rtol=1e-4, atol=1e-5))


@functools.cache
def gemm(dtype: str) -> object | None:
    """A ctypes CBLAS gemm for ``"float32"`` or ``"float64"``, or None when none is usable."""
    letter, real = {"float32": ("s", ctypes.c_float), "float64": ("d", ctypes.c_double)}[dtype]
    for path in _blas_paths():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for pattern, integer in _CANDIDATES:
            fn = _bind(lib, pattern.format(letter), integer, real)
            if fn is not None and _works(fn, np.dtype(dtype)):
                return fn
    return None
