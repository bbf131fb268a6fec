"""CBLAS ``gemm`` and ``axpy`` of the BLAS library NumPy uses, as ctypes functions for compiled code.

Why NumPy's library: it is already loaded, its thread count is what ``--threads`` and
:mod:`mlpkit.engine.threads` control, and for the seed's small products it was measured
faster than the one SciPy bundles (which Numba's ``np.dot`` calls). Wheels of NumPy on Linux and Windows
bundle OpenBLAS with ``scipy_``-prefixed, 64-bit-integer symbols; other builds may expose
plain ``cblas_sgemm``. Every candidate is checked on a small product before it is used, and
when none is found :func:`routines` returns None and training keeps to the NumPy path.
"""

from __future__ import annotations

import ctypes
import functools

import numba.experimental.function_type  # noqa: F401 -- registers the type of first-class C functions
import numpy as np
from numba import types as nb_types
from numba.core.types import WrapperAddressProtocol
from numba.core.typing.typeof import typeof_impl

from mlpkit.engine.threads import blas_libraries

#: Symbol names to try: the 64-bit-integer CBLAS interface (NumPy's wheels and ILP64 builds).
#: The kernels pass sizes as 64-bit integers, so a 32-bit-integer ``cblas_sgemm`` is not used.
_CANDIDATES = (("scipy_cblas_{}gemm64_", ctypes.c_int64), ("cblas_{}gemm64_", ctypes.c_int64))


class Routine(WrapperAddressProtocol):
    """A C function's address and Numba signature: compiled code takes it as an argument
    (a first-class function), so the kernels stay cacheable and a call types it cheaply.
    ``keep``: what holds the code in memory (a ctypes function of the loaded library, or
    the compiled kernel of :mod:`mlpkit.engine.entry_points`)."""

    def __init__(self, address: int, signature, keep: object) -> None:
        self._keep = keep
        self._address = address
        self._signature = signature
        self.numba_type = nb_types.FunctionType(signature)

    @classmethod
    def of_ctypes(cls, fn, signature) -> Routine:
        """The routine of a ctypes function."""
        return cls(int(ctypes.cast(fn, ctypes.c_void_p).value or 0), signature, fn)

    def __wrapper_address__(self) -> int:
        return self._address

    def signature(self):
        return self._signature


@typeof_impl.register(Routine)
def _typeof_routine(value: Routine, context) -> nb_types.FunctionType:
    """The type made once: Numba's generic typing of such objects builds a new one per call
    (slow, and a little memory that is never freed, per call)."""
    return value.numba_type


def _signatures(real):
    """Numba signatures of (gemm, axpy): enums int32, sizes int64, pointers as addresses."""
    i32, i64, ptr = nb_types.int32, nb_types.int64, nb_types.uintp
    gemm = nb_types.void(i32, i32, i32, i64, i64, i64, real, ptr, i64, ptr, i64, real, ptr, i64)
    axpy = nb_types.void(i64, real, ptr, i64, ptr, i64)
    return gemm, axpy


def _blas_paths() -> list[str]:
    """Shared libraries of the BLAS NumPy loaded, NumPy's own first."""
    np.linalg.inv(np.eye(2))  # make sure NumPy's BLAS is loaded
    paths = [info["filepath"] for info in blas_libraries()]
    return sorted(paths, key=lambda p: "numpy" not in p)


def _bind(lib: ctypes.CDLL, name: str, integer, real):
    fn = getattr(lib, name, None)
    if fn is None:
        return None
    enum, ptr = ctypes.c_int, ctypes.c_void_p
    fn.argtypes = [enum, enum, enum, integer, integer, integer, real, ptr, integer, ptr, integer, real, ptr, integer]
    fn.restype = None
    return fn


def _bind_axpy(lib: ctypes.CDLL, name: str, integer, real):
    fn = getattr(lib, name, None)
    if fn is None:
        return None
    fn.argtypes = [integer, real, ctypes.c_void_p, integer, ctypes.c_void_p, integer]
    fn.restype = None
    return fn


def _axpy_works(fn, dtype: np.dtype) -> bool:
    x, y = np.arange(5, dtype=dtype), np.ones(5, dtype=dtype)
    fn(5, -2.0, x.ctypes.data, 1, y.ctypes.data, 1)
    return bool(np.array_equal(y, 1 - 2 * np.arange(5, dtype=dtype)))


def _works(fn, dtype: np.dtype) -> bool:
    """Does ``fn`` compute a small row-major product (with a transpose) correctly?"""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((5, 3)).astype(dtype), rng.standard_normal((5, 4)).astype(dtype)
    c = np.full((3, 4), np.nan, dtype=dtype)
    fn(101, 112, 111, 3, 4, 5, 1.0, a.ctypes.data, 3, b.ctypes.data, 4, 0.0, c.ctypes.data, 4)
    return bool(np.allclose(c, a.T @ b, rtol=1e-4, atol=1e-5))


@functools.cache
def routines(dtype: str) -> tuple[Routine, Routine] | None:
    """CBLAS (gemm, axpy) for ``"float32"`` or ``"float64"`` from one library, or None."""
    letter, real = {"float32": ("s", ctypes.c_float), "float64": ("d", ctypes.c_double)}[dtype]
    signatures = _signatures(nb_types.float32 if dtype == "float32" else nb_types.float64)
    for path in _blas_paths():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for pattern, integer in _CANDIDATES:
            gemm_fn = _bind(lib, pattern.format(letter), integer, real)
            axpy_fn = _bind_axpy(lib, pattern.replace("gemm", "axpy").format(letter), integer, real)
            if (
                gemm_fn is not None
                and axpy_fn is not None
                and _works(gemm_fn, np.dtype(dtype))
                and _axpy_works(axpy_fn, np.dtype(dtype))
            ):
                return Routine.of_ctypes(gemm_fn, signatures[0]), Routine.of_ctypes(axpy_fn, signatures[1])
    return None


def gemm(dtype: str) -> Routine | None:
    """The CBLAS gemm of :func:`routines`, or None."""
    found = routines(dtype)
    return None if found is None else found[0]
