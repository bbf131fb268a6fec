"""Sparse pieces of the compiled steps: the first layer's products on inputs X = V + 1 base^T.

See :mod:`mlpkit.engine.sparse` for the form and :mod:`mlpkit.engine.simd` for the vector
loops; ``sp`` below is what :func:`mlpkit.engine.compiled.sparse_arguments` makes of a
:class:`~mlpkit.engine.sparse.SparseRows`: (blocks, indices, values, base, block).
"""

from __future__ import annotations

import numpy as np

from mlpkit.engine.dense_kernels import FAST, ONE, ZERO, gemm_product
from mlpkit.engine.kernel_cache import kernel_jit
from mlpkit.engine.simd import (
    START_ADD,
    START_SCALE,
    START_SET,
    TILE_VECTORS,
    gather,
    gradient_row,
    lanes,
    prefetch,
    scatter,
)

#: Weight rows at least this wide are packed, one tile of a block of rows at a time, into a
#: contiguous buffer before the sparse loops visit them. Why: the loops read a block's rows at
#: a stride of the row width, and rows a power-of-two stride apart fall into the same L1 cache
#: sets (at 1024 float32 columns, 4 KiB, all of them): measured on MNIST batches, packing made
#: the products 1.2x (128 columns) to 3x (1024) faster; at 64 columns (the seed's layers,
#: one tile) it cost 10%, so they are not packed.
PACK_COLUMNS = 128


def fits(first_width: int, dtype: np.dtype | str) -> bool:
    """Whether these kernels take a first layer of ``first_width`` units: at least one vector
    wide (16 float32 / 8 float64 columns), as their loops work in whole vectors. Narrower first
    layers run dense (measured on MNIST, one thread, 20,000 rows: 8 units, an epoch of steps
    16.9 ms dense against 30.9 sparse with the scalar loops these kernels had for them)."""
    return bool(first_width >= lanes(np.dtype(dtype).itemsize))


@kernel_jit(**FAST)
def tile(n, t, width):
    """The tile of columns that starts at column t of a row of n: (columns, vectors, offset of
    the last vector, lanes of it that the vector before already covers).

    Four vectors while four fit; then the vectors the rest needs, the last one ending at column
    n (so it may overlap the one before, or the tile before); 0 vectors when the whole row is
    narrower than one vector (which the kernels do not take, see ``fits``)."""
    if n - t >= TILE_VECTORS * width:
        return TILE_VECTORS * width, TILE_VECTORS, (TILE_VECTORS - 1) * width, 0
    rest = n - t
    if n < width:
        return rest, 0, 0, 0
    vectors = -(-rest // width)
    return rest, vectors, rest - width, vectors * width - rest


@kernel_jit(inline="always", **FAST)
def aligned_buffer(n, dtype):
    """An uninitialized buffer of n elements starting on a 64-byte cache line (``np.empty``
    here starts on 32 bytes): a 512-bit load that straddles two lines costs ~1.7x as much."""
    raw = np.empty(n + 64, dtype=dtype)
    return raw[(64 - raw.ctypes.data % 64) % 64 // raw.itemsize :][:n]


@kernel_jit(**FAST)
def prefetch_rows(sp, rows):
    """Starts loading the entries (indices and values) of input rows ``rows`` into the cache.

    Why: a training step reads its batch's rows at random places of a sparse set of tens of
    megabytes, so each row's first lines come from memory, one row after another (the loops
    wait on them). Asked for one step ahead, they arrive while that step computes: on MNIST
    batches of 32 rows, the sparse product took 18-20 us a call instead of 22-27 (13 when
    the rows were consecutive). Nothing to do for dense inputs (``sp`` empty) or no rows."""
    blocks, indices, values = sp[0], sp[1], sp[2]
    if blocks.shape[0] == 0:
        return
    last = blocks.shape[1] - 1
    index_step, value_step = max(1, 64 // indices.itemsize), max(1, 64 // values.itemsize)
    for r in range(rows.shape[0]):
        i = rows[r]
        p0, p1 = blocks[i, 0], blocks[i, last]
        if p1 > p0:  # one index and one value in each 64-byte line, and the last ones
            for p in range(p0, p1, index_step):
                prefetch(indices, p)
            prefetch(indices, p1 - 1)
            for p in range(p0, p1, value_step):
                prefetch(values, p)
            prefetch(values, p1 - 1)


@kernel_jit(inline="always", **FAST)
def start_kind(beta, consts):
    """How ``simd.gradient_row`` starts a row of W' for this beta (1: add, 0: overwrite, else scale)."""
    return START_ADD if beta == consts[ONE] else START_SET if beta == consts[ZERO] else START_SCALE


@kernel_jit(**FAST)
def copy_rows(src, src_off, src_ld, dst, dst_off, dst_ld, n_rows, width):
    """dst[dst_off + j * dst_ld + q] = src[src_off + j * src_ld + q] for j < n_rows, q < width: a
    tile of weight rows packed into a contiguous buffer, or written back from it."""
    for j in range(n_rows):
        a, b = src_off + j * src_ld, dst_off + j * dst_ld
        row, out = src[a : a + width], dst[b : b + width]
        for q in range(width):
            out[q] = row[q]


@kernel_jit(**FAST)
def sparse_product(gemm, sp, rows, row0, m, params, w_off, fan_in, n, out, consts):
    """out (m, n) = X @ W for m rows of sparse inputs X = V + 1 base^T:
    c = base @ W once (``base_product``), then each row's nonzeros of V added to c
    (``product_columns`` over all columns).

    Row i of the inputs is ``rows[r]``, or ``row0 + r`` when ``rows`` is empty."""
    c = base_product(gemm, sp, params, w_off, fan_in, n, consts)
    if n >= PACK_COLUMNS:
        base_columns(sp, params, w_off, n, c, 0, n)
    product_columns(sp, rows, row0, m, params, w_off, fan_in, n, out, c, 0, n, True)


@kernel_jit(**FAST)
def narrow_sparse_product(gemm, sp, rows, row0, m, params, w_off, fan_in, n, out, consts):
    """``sparse_product`` for layers narrower than ``PACK_COLUMNS``, compiled without the packed
    path (any width gives the same results; wider rows are just read in place, more slowly).

    Why a kernel of its own: ``kernels.narrow_forward`` calls it, so runs of narrow first layers
    (the seed's) never compile the packing, ~0.45 s of a cold start's compiling."""
    c = base_product(gemm, sp, params, w_off, fan_in, n, consts)
    if n >= PACK_COLUMNS:
        base_columns(sp, params, w_off, n, c, 0, n)
    product_columns(sp, rows, row0, m, params, w_off, fan_in, n, out, c, 0, n, False)


@kernel_jit(inline="always", **FAST)
def base_product(gemm, sp, params, w_off, fan_in, n, consts):
    """c = base @ W, the product every input row starts from: one BLAS call for rows narrower
    than ``PACK_COLUMNS``; for wider ones an empty c that ``base_columns`` fills, range by
    range (so that threads can share the work, with the same sums whatever the ranges)."""
    c = np.empty(n, dtype=params.dtype)
    if n < PACK_COLUMNS:
        w = params[w_off : w_off + fan_in * n].reshape((fan_in, n))
        gemm_product(gemm, sp[3].reshape((1, fan_in)), w, c.reshape((1, n)), False, False, consts)
    return c


@kernel_jit(inline="always", **FAST)
def base_columns(sp, params, w_off, n, c, t_begin, t_end):
    """c[q] = sum_j base[j] W[j, q] for q in [t_begin, t_end), row by row of W."""
    base = sp[3]
    ct = c[t_begin:t_end]
    for q in range(t_end - t_begin):
        ct[q] = 0
    for j in range(base.shape[0]):
        bj = base[j]
        if bj != 0:
            at = w_off + j * n + t_begin
            row = params[at : at + t_end - t_begin]
            for q in range(t_end - t_begin):
                ct[q] += bj * row[q]


@kernel_jit(inline="always", **FAST)
def product_columns(sp, rows, row0, m, params, w_off, fan_in, n, out, c, t_begin, t_end, may_pack):
    """Columns [t_begin, t_end) of ``sparse_product``'s out, from c = base @ W; t_begin is where a
    tile starts (0 or a multiple of a full tile, see ``column_pieces``). ``may_pack``: a constant
    at the call (Numba then drops the packing code before typing it when it is False).

    Loops: tiles of columns (``tile``), then blocks of W's rows (``block`` of them, which stay
    in L1 cache), then the m input rows, each adding its nonzeros in that block (simd.gather,
    accumulators in registers). Columns that two tiles share are recomputed from c across the
    blocks, in the same order, so they end with the same values. Rows of ``PACK_COLUMNS`` or
    more are copied tile by tile into a contiguous buffer first (same sums, in the same order)."""
    blocks, indices, values, block = sp[0], sp[1], sp[2], sp[4]
    flat = out.reshape(-1)
    width = lanes(c.itemsize)
    n_blocks = blocks.shape[1] - 1
    packed = may_pack and n >= PACK_COLUMNS
    pack = aligned_buffer(block * TILE_VECTORS * width if packed else 0, params.dtype)
    t = t_begin
    while t < t_end:
        tw, vectors, last, _ = tile(n, t, width)
        for b in range(n_blocks):
            src, src_off, ld = params, w_off + t, n
            if may_pack:
                if packed and vectors > 0:  # the tile's columns, and those its last vector reaches before t
                    j0, j1, shift = b * block, min(fan_in, (b + 1) * block), max(0, -last)
                    copy_rows(params, w_off + j0 * n + t - shift, n, pack, 0, tw + shift, j1 - j0, tw + shift)
                    src, src_off, ld = pack, shift - j0 * (tw + shift), tw + shift
            for r in range(m):
                i = rows[r] if rows.shape[0] > 0 else row0 + r
                p0, p1 = blocks[i, b], blocks[i, b + 1]
                init, at = (c, t) if b == 0 else (flat, r * n + t)
                gather(indices, values, p0, p1, src, src_off, ld, init, at, flat, r * n + t, last)
        t += tw


@kernel_jit(**FAST)
def sparse_weight_gradient(sp, rows, m, delta, dst, w_off, fan_in, n, alpha, beta, consts):
    """W' = beta W' + alpha X^T delta into ``dst[w_off:]`` (the weights, or their velocity),
    for sparse inputs X = V + 1 base^T: X^T delta = base (1^T delta) + V^T delta, the first an
    outer product (fused with beta), the second one row of W' per nonzero of V
    (``gradient_columns`` over all columns). Returns 1: ``train_steps`` calls it through its
    address, where 0 means that it failed (see mlpkit.engine.entry_points). For rows of
    ``PACK_COLUMNS`` or more, ``wide_weight_gradient`` is faster (same results)."""
    s = column_sums(delta, m, n, alpha)
    gradient_columns(sp, rows, m, delta, dst, w_off, fan_in, n, alpha, beta, consts, s, 0, n)
    return 1


@kernel_jit(**FAST)
def wide_weight_gradient(sp, rows, m, delta, dst, w_off, fan_in, n, alpha, beta, consts):
    """``sparse_weight_gradient`` by columns of the inputs (``batch_columns``,
    ``gathered_gradient_columns``), for rows at least one vector wide; same arguments, same
    results. A kernel of its own so that runs of narrow layers (the seed's) never compile it."""
    s = column_sums(delta, m, n, alpha)
    columns = batch_columns(sp, rows, m, fan_in)
    gathered_gradient_columns(columns, m, delta, dst, w_off, fan_in, n, alpha, beta, consts, s, sp[3], 0, n)
    return 1


@kernel_jit(inline="always", **FAST)
def column_sums(delta, m, n, alpha):
    """alpha 1^T delta: the factor of the base's outer product in the weight gradient."""
    s = np.zeros(n, dtype=delta.dtype)
    for r in range(m):
        dr = delta[r]
        for q in range(n):
            s[q] += dr[q]
    for q in range(n):
        s[q] *= alpha
    return s


@kernel_jit(inline="always", **FAST)
def gradient_columns(sp, rows, m, delta, dst, w_off, fan_in, n, alpha, beta, consts, s, t_begin, t_end):
    """Columns [t_begin, t_end) of ``sparse_weight_gradient`` (row-wise, any width; wide rows
    are faster by columns, ``gathered_gradient_columns``), with s = ``column_sums``; t_begin as
    in ``product_columns``. Same loops as ``product_columns``: per tile and block of W' rows,
    the block's outer product, then every row's nonzeros in it (simd.scatter). Columns that two
    tiles share are added once (simd.scatter's ``skip``)."""
    blocks, indices, values, base, block = sp[0], sp[1], sp[2], sp[3], sp[4]
    flat = delta.reshape(-1)
    width = lanes(consts.itemsize)
    n_blocks = blocks.shape[1] - 1
    kind = start_kind(beta, consts)
    t = t_begin
    while t < t_end:
        tw, vectors, last, skip = tile(n, t, width)
        shift = max(0, -last)
        for b in range(n_blocks):
            j0, j1 = b * block, min(fan_in, (b + 1) * block)
            for j in range(j0, j1):
                # each row of W' started as beta W' + bj s by the vector code of the column-wise
                # kernel (simd.gradient_row without nonzeros), so both round alike whatever LLVM
                # does with the code around them; called directly: an inlined helper would cost
                # atomic reference-count updates per row
                at, start = w_off + j * n + t, (kind, beta, base[j])
                gradient_row(indices, values, 0, 0, flat, 0, 0, dst, at, last, shift, start, s, t)
            for r in range(m):
                i = rows[r]
                p0, p1 = blocks[i, b], blocks[i, b + 1]
                scatter(indices, values, p0, p1, dst, w_off + t, n, flat, r * n + t, alpha, last, skip)
        t += tw


@kernel_jit(**FAST)
def batch_columns(sp, rows, m, fan_in):
    """The batch's nonzeros by input column (the transpose of its sparse rows): for column j,
    entries ``starts[j] .. starts[j + 1] - 1`` of (``members``: the batch row, ``values``), rows
    in increasing order, as the row loops of ``gradient_columns`` add them."""
    blocks, indices, values = sp[0], sp[1], sp[2]
    last = blocks.shape[1] - 1
    fill = np.zeros(fan_in, dtype=np.int64)  # counts, then where each column's next entry goes
    for r in range(m):
        i = rows[r]
        for j in indices[blocks[i, 0] : blocks[i, last]]:
            fill[j] += 1
    starts = np.empty(fan_in + 1, dtype=np.int64)
    total = 0
    for j in range(fan_in):
        starts[j] = total
        count = fill[j]
        fill[j] = total
        total += count
    starts[fan_in] = total
    members = np.empty(total, dtype=np.int32)
    column_values = np.empty(total, dtype=values.dtype)
    for r in range(m):
        i = rows[r]
        p0, p1 = blocks[i, 0], blocks[i, last]
        row_indices, row_values = indices[p0:p1], values[p0:p1]  # slices: no index checks per entry
        for q in range(p1 - p0):
            j = row_indices[q]
            at = fill[j]
            members[at] = r
            column_values[at] = row_values[q]
            fill[j] = at + 1
    return starts, members, column_values


@kernel_jit(inline="always", **FAST)
def gathered_gradient_columns(columns, m, delta, dst, w_off, fan_in, n, alpha, beta, consts, s, base, t_begin, t_end):
    """Columns [t_begin, t_end) of ``sparse_weight_gradient`` for wide rows, from the batch's
    ``batch_columns``: per tile, alpha delta's columns are copied into a contiguous buffer, then
    each row j of W' is started as beta W' + bj s and gets its column's nonzeros as one vector
    sum (simd.gradient_row: W' read and written once, the accumulators in registers).

    Why not ``gradient_columns``' scatter: at 1024 columns its rows had to be packed into a
    buffer and written back (L1 sets, see ``PACK_COLUMNS``) and every nonzero read and wrote a
    row of W'. The sums are the same, in the same order (base, then the batch rows in increasing
    order), so the results are those of the scatter; columns that two vectors of a tile share
    are computed by both, and the columns a last vector reaches back into the tile before get
    zeros added."""
    starts, members, column_values = columns
    flat = delta.reshape(-1)
    kind = start_kind(beta, consts)
    lanes_ = lanes(consts.itemsize)
    scaled = aligned_buffer(m * (TILE_VECTORS + 1) * lanes_, dst.dtype)
    t = t_begin
    while t < t_end:
        tw, vectors, last, _ = tile(n, t, lanes_)
        shift = max(0, -last)
        ld = tw + shift
        # no slices and no inlined calls in the loops below: each costs atomic reference-count
        # updates per row, more than the work at 1024 columns; unsigned indices have no
        # negative-index fix-up, so the loops vectorize
        width = np.uint64(tw)
        for r in range(m):
            out, d_at = np.uint64(r * ld), np.uint64(r * n + t)
            for q in range(np.uint64(shift)):
                scaled[out + q] = 0
            out += np.uint64(shift)
            for q in range(width):
                scaled[out + q] = alpha * flat[d_at + q]
        for j in range(fan_in):
            at, p0, p1 = w_off + j * n + t, starts[j], starts[j + 1]
            start = (kind, beta, base[j])  # W' row j starts as beta W' + bj s (see simd.gradient_row)
            gradient_row(members, column_values, p0, p1, scaled, shift, ld, dst, at, last, shift, start, s, t)
        t += tw


@kernel_jit(**FAST)
def column_pieces(n, width, pieces):
    """Bounds of ``pieces`` column ranges of a row of n for ``product_columns`` and
    ``gradient_columns`` on separate threads: each starts where a tile starts, and the last
    tile, whose last vector may reach back into the tile before it, stays in one range with that
    tile (two threads never touch the same column). Ranges may be empty."""
    tile_w = TILE_VECTORS * width
    full = n // tile_w  # full tiles; a partial one after them may overlap the last of them
    movable = full - 1 if (n % tile_w != 0 and full > 0) else full
    bounds = np.empty(pieces + 1, dtype=np.int64)
    for k in range(pieces + 1):
        bounds[k] = min(n, ((movable * k + pieces - 1) // pieces) * tile_w)
    bounds[pieces] = n
    return bounds
