"""The sparse first layer's products on several threads, and the switch that picks them.

Why: a large model's training step runs its dense products on every BLAS thread, but the
sparse first layer (:mod:`mlpkit.engine.sparse_kernels`) is a loop of this library's own, on
one thread. Its columns are independent, so ``split_product`` and ``split_weight_gradient`` cut
them into ranges that start at tile boundaries (``column_pieces``) and give each range to a
thread: every column is computed by the same loops in the same order as on one thread, so the
results are bit-identical to ``sparse_product`` / ``sparse_weight_gradient``.

Which kernels run is decided by the type of ``sp``: the five-entry tuple of
:func:`mlpkit.engine.compiled.sparse_arguments` runs the one-thread kernels, a six-entry one
(the sixth entry: how many ranges) runs these, and the larger layers' optimizer updates too.
The kernels choose with ``if len(sp) == 6`` where ``sp`` is their own argument: Numba reads the
length of an argument's tuple as a constant and drops the branch not taken before typing it
(not inside an inlined function, nor through a wrapper without a cost: a one-line switch
function added 0.3 s to a cold start, re-optimizing its callees). So kernels that never get a
six-entry tuple (the seed's steps, every evaluation) never compile a parallel function.

Threads: Numba's OpenMP layer with ``OMP_WAIT_POLICY=PASSIVE`` (``choose_threading_layer``).
Measured on the team's 2-core VM, a parallel region right after a two-thread BLAS product
started in 55 us this way; with OpenMP's default policy its threads spin at the barrier
against OpenBLAS's and it took 7.5 ms, and with another process on the second core a split
product ran 6x slower than on one thread; the ``workqueue`` layer (the fallback, when libgomp
is missing or was loaded before with another policy) starts one in ~110 us. ``workqueue``
must not start two parallel regions at once, so the runners that pass six-entry tuples hold
``PARALLEL_LOCK`` while they run. GNU OpenMP is not fork-safe: nothing in mlpkit forks after
training (the precompile helper and Dask's workers start fresh interpreters).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

import numba
from numba import prange

from mlpkit.engine.dense_kernels import FAST
from mlpkit.engine.kernel_cache import kernel_jit
from mlpkit.engine.simd import lanes
from mlpkit.engine.sparse_kernels import (
    PACK_COLUMNS,
    base_columns,
    base_product,
    batch_columns,
    column_pieces,
    column_sums,
    gathered_gradient_columns,
    gradient_columns,
    product_columns,
)
from mlpkit.engine.update_kernels import update_range

_config: Any = numba.config  # (typed Any: Numba's config module sets its names at run time)


def choose_threading_layer() -> None:
    """OpenMP with passive waiting, else workqueue (see the module docstring), unless the user
    chose a layer (``NUMBA_THREADING_LAYER``); before the first parallel region only."""
    if "NUMBA_THREADING_LAYER" in os.environ:
        return
    if "OMP_WAIT_POLICY" not in os.environ and not _libgomp_loaded():
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # read by libgomp when Numba loads it
    if os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE":
        _config.THREADING_LAYER_PRIORITY = ["omp", "workqueue", "tbb"]
    else:
        _config.THREADING_LAYER_PRIORITY = ["workqueue", "omp", "tbb"]


def _libgomp_loaded() -> bool:
    """Whether GNU OpenMP is already in this process (it read its settings then)."""
    try:
        with open("/proc/self/maps") as maps:
            return any("libgomp.so" in line for line in maps)
    except OSError:  # pragma: no cover - not Linux
        return True


choose_threading_layer()

#: Held by whoever runs a kernel with split products (see the module docstring).
PARALLEL_LOCK = threading.Lock()


@kernel_jit(parallel=True, **FAST)
def split_product(gemm, sp, rows, row0, m, params, w_off, fan_in, n, out, consts):
    """``sparse_product`` with its columns cut into ``sp[5]`` ranges run on separate threads."""
    one_thread = (sp[0], sp[1], sp[2], sp[3], sp[4])
    c = base_product(gemm, one_thread, params, w_off, fan_in, n, consts)
    bounds = column_pieces(n, lanes(c.itemsize), sp[5])
    for k in prange(sp[5]):
        if n >= PACK_COLUMNS:
            base_columns(one_thread, params, w_off, n, c, bounds[k], bounds[k + 1])
        product_columns(one_thread, rows, row0, m, params, w_off, fan_in, n, out, c, bounds[k], bounds[k + 1], True)


@kernel_jit(parallel=True, **FAST)
def split_weight_gradient(sp, rows, m, delta, dst, w_off, fan_in, n, alpha, beta, consts):
    """``sparse_weight_gradient`` with its columns cut into ``sp[5]`` ranges run on separate threads."""
    one_thread = (sp[0], sp[1], sp[2], sp[3], sp[4])
    s = column_sums(delta, m, n, alpha)
    bounds = column_pieces(n, lanes(consts.itemsize), sp[5])
    if n >= PACK_COLUMNS:
        columns = batch_columns(one_thread, rows, m, fan_in)  # once, for every thread
        for k in prange(sp[5]):
            gathered_gradient_columns(
                columns, m, delta, dst, w_off, fan_in, n, alpha, beta, consts, s, sp[3], bounds[k], bounds[k + 1]
            )
    else:
        for k in prange(sp[5]):
            gradient_columns(
                one_thread, rows, m, delta, dst, w_off, fan_in, n, alpha, beta, consts, s, bounds[k], bounds[k + 1]
            )


#: Parameter ranges shorter than this are updated on one thread (starting threads costs more).
SPLIT_UPDATE_MIN = 65536


@kernel_jit(parallel=True, **FAST)
def split_update_range(params, grad, s1, s2, a, b, kind, flags, run, step, pieces):
    """``update_range`` of [a, b) in ``pieces`` ranges (cut at multiples of 16 entries, a cache
    line of float32) on separate threads: an element-wise update, so the same bits."""
    size = b - a
    for k in prange(pieces):
        lo = a + (size * k // pieces) // 16 * 16
        hi = b if k == pieces - 1 else a + (size * (k + 1) // pieces) // 16 * 16
        update_range(params, grad, s1, s2, lo, hi, kind, flags, run, step)


@kernel_jit(**FAST)
def layer_update(sp, params, grad, s1, s2, a, b, kind, flags, run, step):
    """``update_kernels.update_range``, or ``split_update_range`` for a six-entry ``sp`` and a
    range of at least ``SPLIT_UPDATE_MIN`` parameters."""
    if len(sp) == 6:
        if b - a >= SPLIT_UPDATE_MIN:
            split_update_range(params, grad, s1, s2, a, b, kind, flags, run, step, sp[5])
        else:
            update_range(params, grad, s1, s2, a, b, kind, flags, run, step)
    else:
        update_range(params, grad, s1, s2, a, b, kind, flags, run, step)


@contextlib.contextmanager
def split_threads(pieces: int) -> Iterator[None]:
    """Around a kernel call whose ``sp`` has ``pieces`` ranges: ``PARALLEL_LOCK`` held, and
    Numba's thread count set to the ranges (no idle threads to start); nothing when 1."""
    if pieces <= 1:
        yield
        return
    with PARALLEL_LOCK:
        before = numba.get_num_threads()
        numba.set_num_threads(min(pieces, _config.NUMBA_NUM_THREADS))
        try:
            yield
        finally:
            numba.set_num_threads(before)
