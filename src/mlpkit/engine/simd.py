"""Three sparse-row loops written as explicit 512-bit vector code (Numba intrinsics).

Why: MNIST's inputs are 81% one value (a blank pixel), so the first layer's products can skip
most of their work (see :mod:`mlpkit.engine.sparse`). The skipping loop is short, but Numba writes
its accumulators back to memory after every nonzero, which made it slower than dense BLAS.
Here the accumulators are LLVM vector values that live in registers for a whole row, so a
nonzero costs a few vector loads and fused multiply-adds. LLVM lowers the 512-bit vectors to
whatever the CPU has (two 256-bit halves on AVX2, four on SSE), so the code runs anywhere
Numba does.

The loops work on a tile of k = 1..4 vectors
(``TILE_VECTORS`` = 4 x 16 float32 = 64 columns at most) and take flat 1-D arrays with element
offsets, so a caller can point them into the model's flat parameter buffer. A tile's vectors sit
at columns 0, L, 2L, ... and the last one at ``last`` (normally (k - 1) L; less, to end a tile
at the end of a row whose width is not a multiple of L = ``lanes``). ``last`` alone gives the
tile's shape: each loop always runs four vectors, at min(k L, last), so a tile of fewer repeats
its last one (computing the same numbers again, or adding zero). Why not one loop per size:
each loop is compiled into every kernel that calls it, and the smaller sizes cost ~0.9 s of a
cold start's compiling, for tiles that are at most the last of a row.

- ``gather(indices, values, p0, p1, src, src_off, ld, init, init_off, out, out_off, last)``:
  ``out[out_off + c] = init[init_off + c] + sum(values[p] * src[src_off + indices[p] * ld + c])``
  over ``p`` in ``p0 .. p1 - 1`` (a row of a sparse matrix times a dense one). Where the last
  vector overlaps the one before, both compute the same numbers.
- ``scatter(indices, values, p0, p1, dst, dst_off, ld, d, d_off, alpha, last, skip)``:
  ``dst[dst_off + indices[p] * ld + c] += alpha * values[p] * d[d_off + c]`` for each ``p``
  (a sparse row's transpose times a row of deltas, added into a weight gradient); the first
  ``skip`` lanes of the last vector add zero, so overlapped columns are added once.
- ``gradient_row(indices, values, p0, p1, src, src_off, ld, dst, at, last, shift, start, s, s_off)``:
  a row of a weight gradient W' started from W' (``start``: how, see ``START_*``) plus a
  gather's sum, W' read and written once (the column-wise weight gradient).

``c`` runs over the tile's columns. The caller keeps offsets in bounds (no checks here).

``prefetch(array, index)`` asks the cache for the line that holds ``array[index]`` (a hint: no
effect on any result).
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, register_jitable

#: ``gradient_row``'s ways to start a row of W' (``start[0]``): W' + bj s, bj s, beta W' + bj s.
START_ADD, START_SET, START_SCALE = 0, 1, 2
#: Vectors per wide tile: 4 x 512 bits = 64 float32 columns (the seed's hidden width) in four
#: registers; more would not fit the registers of AVX2 machines with their loads.
TILE_VECTORS = 4
_VECTOR_BITS = 512
_I64 = ir.IntType(64)


@register_jitable
def lanes(itemsize: int) -> int:
    """Elements of one 512-bit vector of ``itemsize``-byte floats (16 float32, 8 float64)."""
    return _VECTOR_BITS // (8 * itemsize)


def _data(context, builder, aryty, value):
    return context.make_array(aryty)(context, builder, value).data


def _as_i64(builder, value, signed=True):
    if value.type.width < 64:
        return builder.sext(value, _I64) if signed else builder.zext(value, _I64)
    return value


class _Vectors:
    """The vector type of an array's dtype and the helpers its loops need."""

    def __init__(self, context, builder, dtype) -> None:
        self.builder = builder
        self.lanes = _VECTOR_BITS // dtype.bitwidth
        self.type = ir.VectorType(context.get_data_type(dtype), self.lanes)
        suffix = f"v{self.lanes}f{dtype.bitwidth}"
        # llvm.fmuladd: fused where the CPU has FMA, a multiply and an add where not
        self._fmuladd = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(self.type, [self.type] * 3), f"llvm.fmuladd.{suffix}"
        )
        self._fence = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(self.type, [self.type]), f"llvm.arithmetic.fence.{suffix}"
        )

    def pointer(self, data, offset):
        return self.builder.bitcast(self.builder.gep(data, [offset]), self.type.as_pointer())

    def load(self, data, offset):
        return self.builder.load(self.pointer(data, offset), align=1)

    def store(self, value, data, offset):
        self.builder.store(value, self.pointer(data, offset), align=1)

    def splat(self, scalar):
        b = self.builder
        one = b.insert_element(ir.Constant(self.type, ir.Undefined), scalar, ir.Constant(ir.IntType(32), 0))
        zeros = ir.Constant(ir.VectorType(ir.IntType(32), self.lanes), [0] * self.lanes)
        return b.shuffle_vector(one, ir.Constant(self.type, ir.Undefined), zeros)

    def splat_int(self, scalar):
        """An i64 vector of ``scalar`` in every lane."""
        b = self.builder
        ty = ir.VectorType(_I64, self.lanes)
        one = b.insert_element(ir.Constant(ty, ir.Undefined), scalar, ir.Constant(ir.IntType(32), 0))
        return b.shuffle_vector(
            one, ir.Constant(ty, ir.Undefined), ir.Constant(ir.VectorType(ir.IntType(32), self.lanes), [0] * self.lanes)
        )

    def fence(self, value):
        """``value`` as computed: LLVM may not fuse it into a later operation (one rounding each)."""
        return self.builder.call(self._fence, [value])

    def fmuladd(self, a, b, c):
        return self.builder.call(self._fmuladd, [a, b, c])


def _nonzeros(builder, context, sig, args, body) -> None:
    """Calls ``body(column index as i64, value)`` for p in p0 .. p1 - 1."""
    ity, vty = sig.args[0], sig.args[1]
    idx_data, val_data = _data(context, builder, ity, args[0]), _data(context, builder, vty, args[1])
    p0, p1 = _as_i64(builder, args[2]), _as_i64(builder, args[3])
    with cgutils.for_range(builder, builder.sub(p1, p0)) as loop:
        p = builder.add(p0, loop.index)
        j = _as_i64(builder, builder.load(builder.gep(idx_data, [p])), ity.dtype.signed)
        body(j, builder.load(builder.gep(val_data, [p])))


def _check(indices, values, arrays) -> None:
    if not isinstance(indices, types.Array) or not isinstance(indices.dtype, types.Integer):
        raise TypeError("indices must be an integer array")
    dtypes = {values.dtype, *(a.dtype for a in arrays)}
    if len(dtypes) != 1 or next(iter(dtypes)) not in (types.float32, types.float64):
        raise TypeError("values and the dense arrays must share one float dtype")
    if any(a.ndim != 1 for a in (values, *arrays)):
        raise TypeError("the arrays must be 1-D")


def _add_nonzeros(builder, context, sig, args, vec, acc, offsets, src_data, src_off, ld, out_data, out_off) -> None:
    """acc[k] += values[p] * src[src_off + indices[p] * ld + offsets[k]] for p in p0 .. p1 - 1,
    then out[out_off + offsets[k]] = acc[k]: the sum of a sparse row times a dense matrix, one
    vector per accumulator, written once (gather, gradient_row)."""

    def body(j, value):
        scale = vec.splat(value)
        row = builder.add(src_off, builder.mul(j, ld))
        for a, o in zip(acc, offsets):
            w = vec.load(src_data, builder.add(row, o))
            builder.store(vec.fmuladd(scale, w, builder.load(a)), a)

    _nonzeros(builder, context, sig, args, body)
    for a, o in zip(acc, offsets):
        vec.store(builder.load(a), out_data, builder.add(out_off, o))


def _clamped_offsets(builder, vec, last):
    """Column offsets (i64) min(k L, last) of ``gather``'s four vectors: a tile of fewer vectors
    repeats its last one."""
    offsets = []
    for k in range(TILE_VECTORS):
        at = ir.Constant(_I64, k * vec.lanes)
        offsets.append(builder.select(builder.icmp_signed("<", at, last), at, last))
    return offsets


@intrinsic
def gather(typingctx, indices, values, p0, p1, src, src_off, ld, init, init_off, out, out_off, last):
    """The gather loop for a tile of any 1..4 vectors: its vectors sit at min(k L, last), so a
    narrower tile computes its last vector more than once (the same numbers, stored to the same
    place). Why not one loop per tile size: compiled into every kernel that calls it, the three
    smaller ones cost ~0.4 s of a cold start's compiling, for tiles that are at most the last of
    a row (a narrow layer's loop waits on its multiply-adds' latency anyway)."""
    _check(indices, values, (src, init, out))
    sig = types.void(indices, values, p0, p1, src, src_off, ld, init, init_off, out, out_off, last)

    def codegen(context, builder, sig, args):
        vec = _Vectors(context, builder, sig.args[4].dtype)
        src_data = _data(context, builder, sig.args[4], args[4])
        init_data = _data(context, builder, sig.args[7], args[7])
        out_data = _data(context, builder, sig.args[9], args[9])
        src_off, ld = _as_i64(builder, args[5]), _as_i64(builder, args[6])
        init_off, out_off = _as_i64(builder, args[8]), _as_i64(builder, args[10])
        offsets = _clamped_offsets(builder, vec, _as_i64(builder, args[11]))
        # accumulators: allocas that LLVM promotes to registers
        acc = [cgutils.alloca_once(builder, vec.type) for _ in offsets]
        for a, o in zip(acc, offsets):
            builder.store(vec.load(init_data, builder.add(init_off, o)), a)

        _add_nonzeros(builder, context, sig, args, vec, acc, offsets, src_data, src_off, ld, out_data, out_off)
        return context.get_dummy_value()

    return sig, codegen


def _tail_vectors(builder, vec, last):
    """Per vector of a clamped tile (``_clamped_offsets``): whether it sits at ``last`` (the
    tile's last vector or a repeat of it), and whether it is a repeat (i1 each)."""
    tails, repeats = [], []
    for k in range(TILE_VECTORS):
        tails.append(builder.icmp_signed(">=", ir.Constant(_I64, k * vec.lanes), last))
        repeats.append(builder.icmp_signed(">=", ir.Constant(_I64, (k - 1) * vec.lanes), last))
    return tails, repeats


def _lanes_from(builder, vec, first):
    """An i1 vector: lane >= ``first`` (i64)."""
    lane = ir.Constant(ir.VectorType(_I64, vec.lanes), list(range(vec.lanes)))
    return builder.icmp_signed(">=", lane, vec.splat_int(first))


@intrinsic
def scatter(typingctx, indices, values, p0, p1, dst, dst_off, ld, d, d_off, alpha, last, skip):
    """The scatter loop for a tile of any 1..4 vectors, at min(k L, last) as in ``gather``: the
    last vector's first ``skip`` lanes and every repeat of it add zero (a repeat's writes land
    where the last vector already added its share)."""
    _check(indices, values, (dst, d))
    sig = types.void(indices, values, p0, p1, dst, dst_off, ld, d, d_off, alpha, last, skip)

    def codegen(context, builder, sig, args):
        vec = _Vectors(context, builder, sig.args[4].dtype)
        dst_data = _data(context, builder, sig.args[4], args[4])
        d_data = _data(context, builder, sig.args[7], args[7])
        dst_off, ld, d_off = _as_i64(builder, args[5]), _as_i64(builder, args[6]), _as_i64(builder, args[8])
        alpha = context.cast(builder, args[9], sig.args[9], sig.args[4].dtype)
        last = _as_i64(builder, args[10])
        offsets = _clamped_offsets(builder, vec, last)
        tails, repeats = _tail_vectors(builder, vec, last)
        # alpha * the delta row, held in registers across the row's nonzeros, zero where
        # nothing is to be added
        kept = _lanes_from(builder, vec, _as_i64(builder, args[11]))
        everything = ir.Constant(kept.type, [1] * vec.lanes)
        nothing = ir.Constant(kept.type, [0] * vec.lanes)
        scaled = []
        for o, tail, repeat in zip(offsets, tails, repeats):
            keep = builder.select(repeat, nothing, builder.select(tail, kept, everything))
            product = builder.fmul(vec.splat(alpha), vec.load(d_data, builder.add(d_off, o)))
            scaled.append(builder.select(keep, product, ir.Constant(vec.type, None)))

        def body(j, value):
            # every vector read before any is written, and written last to first: a repeat, and
            # the lanes the last vector shares with the one before, add zero to what was read,
            # and the vector that holds those columns' sum is written after them
            scale = vec.splat(value)
            row = builder.add(dst_off, builder.mul(j, ld))
            at = [builder.add(row, o) for o in offsets]
            sums = [vec.fmuladd(scale, v, vec.load(dst_data, a)) for v, a in zip(scaled, at)]
            for total, a in reversed(list(zip(sums, at))):
                vec.store(total, dst_data, a)

        _nonzeros(builder, context, sig, args, body)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def gradient_row(typingctx, indices, values, p0, p1, src, src_off, ld, dst, at, last, shift, start, s, s_off):
    """W' row = its start (beta W' + bj s, see ``START_*``) + the sum over nonzeros p of
    values[p] * src[src_off + indices[p] * ld + c], for a tile of any 1..4 vectors at
    min(k L, last) as in ``gather``; the last vector's first ``shift`` lanes keep W''s values."""
    _check(indices, values, (src, dst, s))
    sig = types.void(indices, values, p0, p1, src, src_off, ld, dst, at, last, shift, start, s, s_off)

    def codegen(context, builder, sig, args):
        vec = _Vectors(context, builder, sig.args[4].dtype)
        src_data = _data(context, builder, sig.args[4], args[4])
        dst_data = _data(context, builder, sig.args[7], args[7])
        s_data = _data(context, builder, sig.args[12], args[12])
        src_off, ld, at = _as_i64(builder, args[5]), _as_i64(builder, args[6]), _as_i64(builder, args[8])
        s_off = _as_i64(builder, args[13])
        last = _as_i64(builder, args[9])
        offsets = _clamped_offsets(builder, vec, last)
        tails, _ = _tail_vectors(builder, vec, last)
        kind, beta, bj = (builder.extract_value(args[11], k) for k in range(3))
        kind = _as_i64(builder, kind)
        # the row's start, beta W' + bj s, every product rounded before the sum (fenced:
        # LLVM fuses a multiply and an add into one rounding where it sees fit, differently
        # in different callers); the last vector's (and its repeats') first ``shift`` lanes
        # belong to the tile before and keep their values
        fresh_lanes = _lanes_from(builder, vec, _as_i64(builder, args[10]))
        everything = ir.Constant(fresh_lanes.type, [1] * vec.lanes)
        fresh = [builder.select(tail, fresh_lanes, everything) for tail in tails]
        acc = [cgutils.alloca_once(builder, vec.type) for _ in offsets]
        products = [vec.fence(builder.fmul(vec.splat(bj), vec.load(s_data, builder.add(s_off, o)))) for o in offsets]
        overwrite = builder.icmp_signed("==", kind, ir.Constant(_I64, START_SET))
        reaches_back = builder.icmp_signed(">", _as_i64(builder, args[10]), ir.Constant(_I64, 0))
        with builder.if_else(overwrite) as (then, otherwise):
            with then:  # bj s: what W' held is not read (for beta 0 it is stale, often not in cache)
                for a, product in zip(acc, products):
                    builder.store(product, a)
                with builder.if_then(reaches_back):
                    for a, o, product, keep in zip(acc, offsets, products, fresh):
                        old = vec.load(dst_data, builder.add(at, o))
                        builder.store(builder.select(keep, product, old), a)
            with otherwise:
                add = builder.icmp_signed("==", kind, ir.Constant(_I64, START_ADD))
                for a, o, product, keep in zip(acc, offsets, products, fresh):
                    old = vec.load(dst_data, builder.add(at, o))
                    kept = builder.fadd(old, product)
                    scaled = builder.fadd(vec.fence(builder.fmul(vec.splat(beta), old)), product)
                    builder.store(builder.select(keep, builder.select(add, kept, scaled), old), a)

        _add_nonzeros(builder, context, sig, args, vec, acc, offsets, src_data, src_off, ld, dst_data, at)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def prefetch(typingctx, array, index):
    """A read of ``array[index]`` will come soon: fetch its cache line into every level now
    (``llvm.prefetch``, which x86 and ARM lower to an instruction that never faults)."""
    if not isinstance(array, types.Array) or not isinstance(index, types.Integer):
        raise TypeError("prefetch takes an array and an integer index")
    sig = types.void(array, index)

    def codegen(context, builder, sig, args):
        byte_ptr = ir.IntType(8).as_pointer()
        at = builder.gep(_data(context, builder, sig.args[0], args[0]), [_as_i64(builder, args[1])])
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte_ptr] + [ir.IntType(32)] * 3), "llvm.prefetch.p0i8"
        )
        read, keep_in_all_levels, data = (ir.Constant(ir.IntType(32), v) for v in (0, 3, 1))
        builder.call(fn, [builder.bitcast(at, byte_ptr), read, keep_in_all_levels, data])
        return context.get_dummy_value()

    return sig, codegen
